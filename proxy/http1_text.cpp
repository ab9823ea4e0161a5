// The words of HTTP/1.1 that tokengate says: refusal messages and reason phrases.
#include "proxy/http1.hpp"

#include <utility>

namespace tokengate::proxy::http1 {

refusal refusal_for(head_error e) noexcept {
  switch (e) {
  case head_error::bare_lf:
    return {400, "bare LF in request head"};
  case head_error::bad_method:
    return {400, "request method must be upper case (e.g. GET, DELETE)"};
  case head_error::bad_version:
    return {505, "only HTTP/1.0 and HTTP/1.1 are supported"};
  case head_error::bad_field:
    return {400, "malformed header field"};
  case head_error::space_before_colon:
    return {400, "whitespace before ':' in a header field"};
  case head_error::obsolete_line_folding:
    return {400, "obsolete line folding in a header field"};
  case head_error::too_many_fields:
    return {431, "too many header fields"};
  case head_error::bad_start_line:
    break;
  }
  return {400, "malformed request line"};
}

std::string_view describe(framing_error e) noexcept {
  switch (e) {
  case framing_error::bad_content_length:
    return "invalid Content-Length";
  case framing_error::duplicate_content_length:
    return "more than one Content-Length";
  case framing_error::bad_transfer_encoding:
    return "Transfer-Encoding other than chunked";
  case framing_error::duplicate_transfer_encoding:
    return "more than one Transfer-Encoding";
  case framing_error::transfer_encoding_with_length:
    return "both Transfer-Encoding and Content-Length";
  case framing_error::transfer_encoding_on_http10:
    return "Transfer-Encoding in an HTTP/1.0 request";
  }
  return "invalid message framing";
}

std::string_view reason_phrase(unsigned status) noexcept {
  static constexpr std::pair<unsigned, std::string_view> phrases[]{
      {100, "Continue"},
      {101, "Switching Protocols"},
      {200, "OK"},
      {201, "Created"},
      {202, "Accepted"},
      {204, "No Content"},
      {206, "Partial Content"},
      {301, "Moved Permanently"},
      {302, "Found"},
      {304, "Not Modified"},
      {400, "Bad Request"},
      {401, "Unauthorized"},
      {403, "Forbidden"},
      {404, "Not Found"},
      {405, "Method Not Allowed"},
      {408, "Request Timeout"},
      {411, "Length Required"},
      {413, "Content Too Large"},
      {417, "Expectation Failed"},
      {429, "Too Many Requests"},
      {431, "Request Header Fields Too Large"},
      {500, "Internal Server Error"},
      {501, "Not Implemented"},
      {502, "Bad Gateway"},
      {503, "Service Unavailable"},
      {504, "Gateway Timeout"},
      {505, "HTTP Version Not Supported"},
  };
  for (const auto& [code, phrase] : phrases)
    if (code == status)
      return phrase;
  return "Unknown";
}

} // namespace tokengate::proxy::http1
