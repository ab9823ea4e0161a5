#include "proxy/path.hpp"

#include "proxy/http1.hpp"

#include <algorithm>
#include <optional>
#include <stdexcept>

namespace tokengate::proxy {
namespace {

bool is_unreserved(unsigned char c) noexcept {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '.' || c == '_' || c == '~';
}

// A segment of dots and (encoded) spaces, with at least one dot, that is not "." or "..":
// Windows and IIS trim trailing dots and spaces from a name, so "...", "..%20" and ". ." are
// dot segments there. Here such a segment would be a plain name.
bool is_dots_and_spaces(std::string_view segment) noexcept {
  if (segment == "." || segment == ".." || segment.find('.') == std::string_view::npos)
    return false;
  while (!segment.empty()) {
    if (segment.front() == '.')
      segment.remove_prefix(1);
    else if (segment.starts_with("%20"))
      segment.remove_prefix(3);
    else
      return false;
  }
  return true;
}

// A segment that is "." or ".." (or dots and spaces, as above) once what follows a delimiter is
// cut off: parameters from ';' (literal or %3B), as Tomcat and Spring cut them ("..;x=1" is ".."
// there), or an encoded '?' or '#' (%3F, %23) that a backend decoding the whole target before
// splitting it takes for the end of the path. Here such a segment would be a plain name.
bool is_dot_with_parameters(std::string_view segment) noexcept {
  auto cut = segment.find(';');
  for (const std::string_view escaped : {"%3B", "%3F", "%23"})
    cut = std::min(cut, segment.find(escaped));
  if (cut == std::string_view::npos)
    return false;
  const auto base = segment.substr(0, cut);
  return base == "." || base == ".." || is_dots_and_spaces(base);
}

// Whether the escape at the start of `rest`, decoded to `byte`, can only begin an overlong
// UTF-8 form: a lead byte C0 or C1, or E0, F0, F8 (the old 5-byte form) or FC (6-byte) before
// a continuation byte too low for them. A backend that decodes such forms leniently reads
// "%C0%AF" as '/' and "%C0%AE" as '.'. (F8 and FC before other bytes are Latin-1, as %FC is ü.)
bool begins_overlong(unsigned char byte, std::string_view rest) noexcept {
  if (byte == 0xC0 || byte == 0xC1)
    return true;
  unsigned highest_overlong = 0;
  switch (byte) {
  case 0xE0:
    highest_overlong = 0x9F;
    break;
  case 0xF0:
    highest_overlong = 0x8F;
    break;
  case 0xF8:
    highest_overlong = 0x87;
    break;
  case 0xFC:
    highest_overlong = 0x83;
    break;
  default:
    return false;
  }
  if (rest.size() < 6 || rest[3] != '%')
    return false;
  const int hi = http1::hex_value(rest[4]);
  const int lo = http1::hex_value(rest[5]);
  if (hi < 0 || lo < 0)
    return false;
  const auto next = static_cast<unsigned>(hi * 16 + lo);
  return next >= 0x80 && next <= highest_overlong;
}

// Applies the segment that ends the path so far (from `segment_start`): "" and "." vanish, ".."
// removes the segment before it (never above the root).
std::optional<path_error> end_segment(std::string& path, std::size_t& segment_start, bool last) {
  const auto segment = std::string_view(path).substr(segment_start);
  if (is_dot_with_parameters(segment))
    return path_error::dot_parameters;
  if (is_dots_and_spaces(segment))
    return path_error::dots_and_spaces;
  const bool parent = segment == "..";
  if (parent || segment == ".") {
    path.resize(segment_start); // invalidates `segment`
    if (parent && path.size() > 1) {
      path.pop_back();
      path.resize(path.rfind('/') + 1);
    }
  } else if (!segment.empty() && !last) {
    path.push_back('/');
  }
  segment_start = path.size();
  return std::nullopt;
}

// Appends the escape at the start of `rest` ("%XX..."): decoded when unreserved, else with its
// hex upper-cased. Escapes that could hide a boundary or be decoded into one are refused.
std::optional<path_error> append_escape(std::string& path, std::string_view rest) {
  if (rest.size() < 3)
    return path_error::bad_escape;
  const int hi = http1::hex_value(rest[1]);
  const int lo = http1::hex_value(rest[2]);
  if (hi < 0 || lo < 0)
    return path_error::bad_escape;
  const auto decoded = static_cast<unsigned char>(hi * 16 + lo);
  if (decoded == '/' || decoded == '\\' || decoded == 0)
    return path_error::encoded_separator;
  if (decoded == '%')
    return path_error::encoded_percent;
  if (decoded < 0x20 || decoded == 0x7f)
    return path_error::encoded_control;
  if (begins_overlong(decoded, rest))
    return path_error::overlong_utf8;
  if (is_unreserved(decoded)) {
    path.push_back(static_cast<char>(decoded));
  } else {
    path.push_back('%');
    path.push_back("0123456789ABCDEF"[hi]);
    path.push_back("0123456789ABCDEF"[lo]);
  }
  return std::nullopt;
}

} // namespace

boost::system::result<void, path_error> normalize_target(std::string_view target,
                                                         normalized_target& out) {
  out.path.clear();
  out.query = {};
  out.has_query = false;
  if (target.empty() || target.front() != '/')
    return path_error::not_origin_form;
  const auto question = target.find('?');
  auto raw = target.substr(0, question);
  if (question != std::string_view::npos) {
    out.query = target.substr(question + 1);
    out.has_query = true;
  }
  if (raw.find('#') != std::string_view::npos || out.query.find('#') != std::string_view::npos)
    return path_error::fragment;

  // Decode straight into out.path; at each segment's end, apply it if it is "", "." or "..".
  out.path.push_back('/');
  std::size_t segment_start = 1;
  for (std::size_t i = 1; i <= raw.size(); ++i) {
    std::optional<path_error> e;
    if (i == raw.size() || raw[i] == '/')
      e = end_segment(out.path, segment_start, i == raw.size());
    else if (raw[i] == '\\')
      e = path_error::backslash;
    else if (const auto byte = static_cast<unsigned char>(raw[i]); byte <= 0x20 || byte >= 0x7f)
      e = path_error::raw_byte;
    else if (raw[i] != '%')
      out.path.push_back(raw[i]);
    else if (e = append_escape(out.path, raw.substr(i)); !e)
      i += 2;
    if (e)
      return *e;
  }
  return {};
}

std::string_view describe(path_error e) noexcept {
  switch (e) {
  case path_error::not_origin_form:
    return "request target must be a path starting with '/'";
  case path_error::bad_escape:
    return "malformed percent-encoding in request path";
  case path_error::encoded_separator:
    return "request path contains an encoded '/', '\\' or NUL";
  case path_error::backslash:
    return "request path contains a backslash";
  case path_error::fragment:
    return "request target contains a fragment ('#')";
  case path_error::dot_parameters:
    return "request path contains a '.' or '..' segment followed by ';', %3B, %3F or %23";
  case path_error::encoded_percent:
    return "request path contains an encoded '%' (%25)";
  case path_error::encoded_control:
    return "request path contains an encoded control character";
  case path_error::overlong_utf8:
    return "request path contains an escape that begins an overlong UTF-8 form (%C0, %C1, or %E0, "
           "%F0, %F8, %FC before too low a byte)";
  case path_error::raw_byte:
    return "request path contains a byte that is not printable ASCII: escape it";
  case path_error::dots_and_spaces:
    return "request path contains a segment of dots and spaces other than '.' and '..'";
  }
  return "bad request path";
}

void throw_exception_from_error(path_error e, const boost::source_location&) {
  throw std::logic_error("unchecked path error: " + std::string(describe(e)));
}

bool under_prefix(std::string_view path, std::string_view prefix) noexcept {
  if (prefix == "/")
    return true;
  return path.starts_with(prefix) && (path.size() == prefix.size() || path[prefix.size()] == '/');
}

} // namespace tokengate::proxy
