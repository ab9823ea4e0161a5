#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace tokengate::proxy {

/// The one way tokengate writes its own answers (the token API, the proxy's refusals, the admin
/// endpoints and the listener's 503), and the small writers the head rewrites share.

/// A complete response with a JSON body (which may be empty, for 204): Content-Type,
/// Content-Length (not for 204 and 304), Allow when given, Cache-Control: no-store,
/// "Connection: close" when `close`, and `extra` (whole "<name>: <value>\r\n" lines) as is.
void build_json_response(std::string& out, unsigned status, std::string_view body, bool close,
                         std::string_view allow = {}, std::string_view extra = {});

/// A complete response with a body of `content_type` (for 200 answers that are not JSON, such
/// as /metrics), Content-Length, Cache-Control: no-store.
void build_response(std::string& out, unsigned status, std::string_view content_type,
                    std::string_view body, bool close);

/// A complete JSON error response {"message": ...} (`message` is escaped).
void build_error_response(std::string& out, unsigned status, std::string_view message, bool close,
                          std::string_view allow = {}, std::string_view extra = {});

/// The head of a response built above, without its body: the answer to HEAD.
[[nodiscard]] std::string_view head_only(std::string_view response) noexcept;

/// "HTTP/1.1 <status> <reason>\r\n"
void append_status_line(std::string& out, unsigned status);
/// "<name>: <value>\r\n"
void append_field(std::string& out, std::string_view name, std::string_view value);
/// `n` in decimal.
void append_number(std::string& out, std::uint64_t n);

} // namespace tokengate::proxy
