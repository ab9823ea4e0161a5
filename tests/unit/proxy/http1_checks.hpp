#pragma once

// Reading HTTP/1.1 heads in the http1 tests: results as their error (or nullopt), the
// framing of a head made of given fields, and a parsed head that owns its bytes.
#include "proxy/http1.hpp"

#include <catch2/catch.hpp>

#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace tokengate::proxy::http1::testing {

// The tests read a result as its error, or nullopt for success.
template <class R> inline auto error_of(const R& r) {
  return r ? std::nullopt : std::optional(r.error());
}

// Parses a request head; `text` must outlive the result's views.
inline std::optional<head_error> request(const std::string& text, head& out) {
  return error_of(parse_request(text, out));
}

inline std::optional<head_error> request_error(const std::string& text) {
  head h;
  return error_of(parse_request(text, h));
}

inline std::optional<head_error> response_error(const std::string& text) {
  head h;
  return error_of(parse_response(text, h));
}

// scan_head's answer as an error (or nullopt) and a size.
struct scan_outcome {
  std::optional<head_error> error;
  std::size_t size = 0;
};
inline scan_outcome scan(std::string_view buffer, std::size_t& scanned) {
  const auto r = scan_head(buffer, scanned);
  return r ? scan_outcome{std::nullopt, *r} : scan_outcome{r.error(), 0};
}

// The request framing of a head made of a request line and `fields` (each ending in CRLF).
struct framing_result {
  std::optional<framing_error> error;
  framing body;
};
inline framing_result req_framing(const std::string& fields,
                                  const std::string& version = "HTTP/1.1") {
  const auto text = "POST /upload " + version + "\r\n" + fields + "\r\n";
  head h;
  REQUIRE(parse_request(text, h).has_value());
  const auto f = request_framing(h);
  return {error_of(f), f ? *f : framing{}};
}

inline framing_result resp_framing(const std::string& status_line, const std::string& fields,
                                   const std::string& method = "GET") {
  const auto text = status_line + "\r\n" + fields + "\r\n";
  head h;
  REQUIRE(parse_response(text, h).has_value());
  const auto f = response_framing(h, method);
  return {error_of(f), f ? *f : framing{}};
}

// A parsed head with the bytes its views point into (on the heap, so moving keeps them valid).
struct parsed {
  std::unique_ptr<const std::string> text;
  head h;
};

inline parsed parsed_request(std::string text) {
  parsed p{std::make_unique<const std::string>(std::move(text)), {}};
  REQUIRE(parse_request(*p.text, p.h).has_value());
  return p;
}

} // namespace tokengate::proxy::http1::testing
