#pragma once

#include "store/hex.hpp"

#include <boost/system/result.hpp>

#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

namespace tokengate::proxy::http1 {

/// One header field as it stands in the read buffer (views stay valid while the buffer does).
struct field {
  std::string_view name;
  std::string_view value; ///< without leading and trailing whitespace
};

/// Why a head was refused. Each maps to one answer (see `refusal_for`).
enum class head_error : std::uint8_t {
  bare_lf,               ///< a line ended in LF without CR
  bad_start_line,        ///< request or status line malformed
  bad_method,            ///< a method not spelt in upper case (backends disagree on others)
  bad_version,           ///< not HTTP/1.0 or HTTP/1.1
  bad_field,             ///< field name or value malformed
  space_before_colon,    ///< "Name : value"
  obsolete_line_folding, ///< a field line starting with SP or HTAB
  too_many_fields,
};

/// What a refused message is answered with: a status and the JSON error's message.
struct refusal {
  unsigned status = 400;
  std::string_view message;
};

/// The answer to a request head refused with `e` (400, 431 for too many fields, 505 for the
/// version).
[[nodiscard]] refusal refusal_for(head_error e) noexcept;

struct head {
  std::string_view method; ///< requests
  std::string_view target; ///< requests
  unsigned status = 0;     ///< responses
  unsigned version = 11;   ///< 10 or 11
  std::vector<field> fields;
  std::size_t size = 0; ///< bytes of the head, final empty line included

  /// The first field with this name (case-insensitive), or nullopt.
  [[nodiscard]] std::optional<std::string_view> find(std::string_view name) const noexcept;
};

inline constexpr std::size_t max_fields = 100;

/// Finds the end of a head in `buffer`, resuming at `scanned` (0 at first; updated so that each
/// byte is scanned once). Returns the head's size, 0 when more bytes are needed, or bare_lf for
/// a bare LF, which is refused as soon as it arrives.
[[nodiscard]] boost::system::result<std::size_t, head_error>
scan_head(std::string_view buffer, std::size_t& scanned) noexcept;

/// Parses a complete request head (as found by `scan_head`) into `out`, reusing its capacity.
[[nodiscard]] boost::system::result<void, head_error> parse_request(std::string_view head_bytes,
                                                                    head& out);
/// Parses a complete response head into `out`.
[[nodiscard]] boost::system::result<void, head_error> parse_response(std::string_view head_bytes,
                                                                     head& out);

/// How a message's body is delimited.
struct framing {
  enum class kind : std::uint8_t { none, length, chunked, until_close };
  kind type = kind::none;
  std::uint64_t length = 0;
};

enum class framing_error : std::uint8_t {
  bad_content_length,            ///< not a plain decimal number
  duplicate_content_length,      ///< two Content-Length fields (or a list)
  bad_transfer_encoding,         ///< anything but exactly "chunked"
  duplicate_transfer_encoding,   ///< two Transfer-Encoding fields
  transfer_encoding_with_length, ///< both Transfer-Encoding and Content-Length
  transfer_encoding_on_http10,
};

/// The message a client gets for a request refused with `e` (always a 400).
[[nodiscard]] std::string_view describe(framing_error e) noexcept;

/// The framing of a request body (RFC 9112 section 6), refusing every ambiguity a smuggling
/// attack could use.
[[nodiscard]] boost::system::result<framing, framing_error> request_framing(const head& h);

/// The framing of a response body to a request with `method`.
[[nodiscard]] boost::system::result<framing, framing_error>
response_framing(const head& h, std::string_view method);

/// For boost::system::result's value(): tokengate reads results only after checking them.
[[noreturn]] void throw_exception_from_error(head_error e, const boost::source_location& where);
[[noreturn]] void throw_exception_from_error(framing_error e, const boost::source_location& where);

/// Connection options: whether "close" or "keep-alive" were named, and whether the header
/// named other fields (which are hop-by-hop and must not be forwarded).
struct connection_options {
  bool close = false;
  bool keep_alive = false;
  bool names_fields = false;
};
[[nodiscard]] connection_options connection_of(const head& h);

/// Whether `name` appears in the Connection header(s) of `h` (case-insensitive).
[[nodiscard]] bool named_in_connection(const head& h, std::string_view name);

/// Whether a connection may carry another message after this one.
[[nodiscard]] bool keeps_alive(const head& h);

/// Whether a 204 response announces a body (Content-Length other than 0, or Transfer-Encoding):
/// RFC 9110 forbids both, and an upstream that sends them may well send the body too, after
/// the answer has ended.
[[nodiscard]] bool no_content_announces_body(const head& response);

using store::hex_value;

/// Whether `host` is a Host field value tokengate forwards (RFC 9110 section 7.2, stricter, and as
/// nginx): a name of letters, digits, '-', '_' and '~' in labels between dots (none empty but a
/// last one), an IPv4 address, or an IPv6 literal in brackets, each with an optional ":port" (at
/// most 65535). Anything else (empty, a '/', a ',', a space, a percent-escape, userinfo, "a..b")
/// could be read as another host or path by the upstream, or as none.
[[nodiscard]] bool valid_host(std::string_view host) noexcept;

/// Whether a backend could read the field name `name` as `canonical` (lower case letters, digits
/// and '-'): equal ignoring case, with any other separator ('_', '.', ...) in `name` standing for
/// '-' (CGI and WSGI map '-' to '_'; some frameworks map more).
[[nodiscard]] bool backend_equals(std::string_view name, std::string_view canonical) noexcept;

/// Case-insensitive ASCII comparison.
[[nodiscard]] bool iequals(std::string_view a, std::string_view b) noexcept;

/// The standard reason phrase, e.g. "Not Found".
[[nodiscard]] std::string_view reason_phrase(unsigned status) noexcept;

} // namespace tokengate::proxy::http1
