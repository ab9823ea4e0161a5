#pragma once

// The one way the tests' Beast clients (plain and TLS) read an answer into an http_response.

#include "tests/support/http_client.hpp"

#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>

namespace tokengate::test {

/// Reads one whole response from `stream` (any size; `head`: the answer to a HEAD, no body).
template <class Stream>
http_response read_response(Stream& stream, boost::beast::flat_buffer& buffer, bool head) {
  namespace http = boost::beast::http;
  http::response_parser<http::string_body> parser;
  parser.body_limit(boost::none);
  if (head)
    parser.skip(true);
  http::read(stream, buffer, parser);
  const auto& res = parser.get();
  http_response out;
  out.status = res.result_int();
  for (const auto& f : res)
    out.headers.emplace_back(std::string(f.name_string()), std::string(f.value()));
  out.body = res.body();
  out.keep_alive = res.keep_alive();
  return out;
}

} // namespace tokengate::test
