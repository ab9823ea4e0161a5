#pragma once

#include <boost/system/result.hpp>

#include <string>
#include <string_view>

namespace tokengate::proxy {

/// A request target split and normalised (RFC 3986 section 6.2.2): unreserved characters
/// percent-decoded, other escapes' hex upper-cased, empty and "." segments dropped, ".."
/// segments applied (never above the root). The query is kept as sent. Spellings some backend
/// would resolve to another path than this normalisation does are refused (see `path_error`
/// and the README's "Equivalent spellings"), so the normalised path is the one every backend
/// serves.
struct normalized_target {
  std::string path;
  std::string_view query; ///< without '?'; a view into the original target
  bool has_query = false;
};

enum class path_error {
  not_origin_form,   ///< does not start with '/' (absolute-form, authority-form, '*')
  bad_escape,        ///< '%' not followed by two hex digits
  encoded_separator, ///< %2F, %5C or %00: an attempt to hide a segment boundary or end
  backslash,         ///< a literal '\', which some backends take for '/'
  fragment,          ///< '#' has no place in a request
  dot_parameters,    ///< "..;x", ".;", "%2e%2e%3b", "..%3F": some backend reads a dot segment
  encoded_percent,   ///< %25: a backend that decodes twice would see another path
  encoded_control,   ///< %01-%1F or %7F: never part of a resource name
  overlong_utf8,     ///< %C0, %C1, %E0%80-%9F, ...: a lenient UTF-8 decoder reads %C0%AF as '/'
  dots_and_spaces,   ///< "...", "..%20": Windows and IIS trim trailing dots and spaces to ".."
  raw_byte,          ///< a byte that is not printable ASCII, unescaped (never from the parser)
};

/// Normalises `target` into `out` (reusing its capacity). `out.query` views into `target`.
[[nodiscard]] boost::system::result<void, path_error> normalize_target(std::string_view target,
                                                                       normalized_target& out);

/// For boost::system::result's value(): tokengate reads results only after checking them.
[[noreturn]] void throw_exception_from_error(path_error e, const boost::source_location& where);

/// The message a client gets for `e`.
[[nodiscard]] std::string_view describe(path_error e) noexcept;

/// Whether `path` lies under `prefix` on whole segments: "/alerts" holds "/alerts",
/// "/alerts/" and "/alerts/7", not "/alertsx". The prefix "/" holds every path.
[[nodiscard]] bool under_prefix(std::string_view path, std::string_view prefix) noexcept;

} // namespace tokengate::proxy
