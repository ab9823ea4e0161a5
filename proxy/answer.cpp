#include "proxy/answer.hpp"

#include "proxy/http1.hpp"
#include "proxy/log.hpp"

#include <charconv>

namespace tokengate::proxy {

void append_field(std::string& out, std::string_view name, std::string_view value) {
  out.append(name);
  out.append(": ");
  out.append(value);
  out.append("\r\n");
}

void append_number(std::string& out, std::uint64_t n) {
  char buffer[24];
  auto [end, ec] = std::to_chars(buffer, buffer + sizeof buffer, n);
  out.append(buffer, end);
}

void append_status_line(std::string& out, unsigned status) {
  out.append("HTTP/1.1 ");
  append_number(out, status);
  out.push_back(' ');
  out.append(http1::reason_phrase(status));
  out.append("\r\n");
}

void build_json_response(std::string& out, unsigned status, std::string_view body, bool close,
                         std::string_view allow, std::string_view extra) {
  out.clear();
  append_status_line(out, status);
  if (!body.empty())
    out.append("Content-Type: application/json\r\n");
  if (status != 204 && status != 304) {
    out.append("Content-Length: ");
    append_number(out, body.size());
    out.append("\r\n");
  }
  if (!allow.empty())
    append_field(out, "Allow", allow);
  out.append("Cache-Control: no-store\r\n");
  out.append(extra);
  if (close)
    out.append("Connection: close\r\n");
  out.append("\r\n");
  out.append(body);
}

void build_response(std::string& out, unsigned status, std::string_view content_type,
                    std::string_view body, bool close) {
  out.clear();
  append_status_line(out, status);
  append_field(out, "Content-Type", content_type);
  out.append("Content-Length: ");
  append_number(out, body.size());
  out.append("\r\nCache-Control: no-store\r\n");
  if (close)
    out.append("Connection: close\r\n");
  out.append("\r\n");
  out.append(body);
}

void build_error_response(std::string& out, unsigned status, std::string_view message, bool close,
                          std::string_view allow, std::string_view extra) {
  std::string body = "{\"message\":\"";
  append_json_escaped(body, message);
  body.append("\"}");
  build_json_response(out, status, body, close, allow, extra);
}

std::string_view head_only(std::string_view response) noexcept {
  const auto end = response.find("\r\n\r\n");
  return end == std::string_view::npos ? response : response.substr(0, end + 4);
}

} // namespace tokengate::proxy
