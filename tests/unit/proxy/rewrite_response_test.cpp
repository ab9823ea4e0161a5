// What the client receives: the upstream's response head rewritten for it, and tokengate's own
// JSON errors. The heads built are read back with the tests' own parser (rewrite_checks.hpp).
#include "proxy/rewrite.hpp"

#include "proxy/answer.hpp"

#include "tests/unit/proxy/rewrite_checks.hpp"
#include "tokenapi/authorizer.hpp"
#include "tokenapi/token.hpp"

#include <boost/json.hpp>
#include <catch2/catch.hpp>

#include <algorithm>
#include <cctype>
#include <memory>
#include <string>
#include <utility>
#include <vector>

using namespace tokengate;
using namespace tokengate::proxy;
using tokenapi::permission;
using namespace tokengate::proxy::testing;

TEST_CASE("the client gets the upstream's response less hop-by-hop fields", "[rewrite]") {
  const std::string response = "HTTP/1.1 201 Whatever\r\n"
                               "Content-Type: text/plain\r\n"
                               "Content-Length: 10\r\n"
                               "Connection: keep-alive, X-Internal\r\n"
                               "X-Internal: secret\r\n"
                               "Keep-Alive: timeout=5\r\n"
                               "Upgrade: h2c\r\n"
                               "Proxy-Authenticate: Basic\r\n"
                               "Trailer: X-Sum\r\n"
                               "Set-Cookie: a=1\r\n"
                               "Set-Cookie: b=2\r\n"
                               "\r\n";
  SECTION("as the upstream framed it") {
    const auto c = client_sees(response, client_framing::as_upstream, false);
    CHECK(c.start_line == "HTTP/1.1 201 Created");
    CHECK(c.one("Content-Length") == "10");
    CHECK(c.one("Content-Type") == "text/plain");
    CHECK(c.all("Set-Cookie") == std::vector<std::string>{"a=1", "b=2"});
    for (const char* gone : {"Connection", "X-Internal", "Keep-Alive", "Upgrade",
                             "Proxy-Authenticate", "Trailer", "Transfer-Encoding"}) {
      INFO(gone);
      CHECK(c.count(gone) == 0);
    }
    CHECK(c.body.empty());
  }
  SECTION("with Connection: close when asked") {
    const auto c = client_sees(response, client_framing::as_upstream, true);
    CHECK(c.one("Connection") == "close");
    CHECK(c.count("X-Internal") == 0);
  }
  SECTION("re-framed as chunked: no Content-Length") {
    const auto c = client_sees(response, client_framing::chunked, false);
    CHECK(c.one("Transfer-Encoding") == "chunked");
    CHECK(c.count("Content-Length") == 0);
    CHECK(c.count("Connection") == 0);
  }
  SECTION("until close for an HTTP/1.0 client") {
    const auto c = client_sees(response, client_framing::until_close, true);
    CHECK(c.count("Transfer-Encoding") == 0);
    CHECK(c.count("Content-Length") == 0);
    CHECK(c.one("Connection") == "close");
  }
}

TEST_CASE("a chunked upstream response is re-framed once", "[rewrite]") {
  const auto c = client_sees("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-A: 1\r\n\r\n",
                             client_framing::chunked, false);
  CHECK(c.one("Transfer-Encoding") == "chunked");
  CHECK(c.one("X-A") == "1");
  const auto until_close =
      client_sees("HTTP/1.0 200 OK\r\nX-A: 1\r\n\r\n", client_framing::chunked, false);
  CHECK(until_close.start_line == "HTTP/1.1 200 OK");
  CHECK(until_close.one("Transfer-Encoding") == "chunked");
}

TEST_CASE("error responses are JSON with a right Content-Length", "[rewrite]") {
  std::string out = "stale";
  const std::string message = "bad \"key\" \\ here\n\ttab \x01 caf\xc3\xa9";
  build_error_response(out, 401, message, false);
  const auto r = read_head(out);
  CHECK(r.start_line == "HTTP/1.1 401 Unauthorized");
  CHECK(r.one("Content-Type") == "application/json");
  CHECK(r.one("Content-Length") == std::to_string(r.body.size()));
  CHECK(r.count("Connection") == 0);
  CHECK(r.count("Allow") == 0);
  const auto body = boost::json::parse(r.body);
  REQUIRE(body.is_object());
  CHECK(body.as_object().size() == 1);
  CHECK(body.at("message").as_string() == message);

  SECTION("with Connection: close and Allow") {
    build_error_response(out, 405, "method not allowed", true, "GET, HEAD");
    const auto e = read_head(out);
    CHECK(e.start_line == "HTTP/1.1 405 Method Not Allowed");
    CHECK(e.one("Allow") == "GET, HEAD");
    CHECK(e.one("Connection") == "close");
    CHECK(e.body == R"({"message":"method not allowed"})");
    CHECK(e.one("Content-Length") == std::to_string(e.body.size()));
  }
  SECTION("an empty JSON response for 204") {
    build_json_response(out, 204, "", false);
    const auto e = read_head(out);
    CHECK(e.start_line == "HTTP/1.1 204 No Content");
    CHECK(e.count("Content-Length") == 0);
    CHECK(e.count("Content-Type") == 0);
    CHECK(e.body.empty());
  }
}

TEST_CASE("the key's fields in an answer are tokengate's, never the upstream's", "[rewrite]") {
  const std::string response = "HTTP/1.1 200 OK\r\n"
                               "Content-Length: 0\r\n"
                               "X-Token-Expires: forged\r\n"
                               "x-token-rotated: forged\r\n"
                               "X-Token-Id: forged\r\n"
                               "X_Token_Name: forged\r\n"
                               "RateLimit: \"up\";r=5;t=1\r\n"
                               "RateLimit-Policy: \"up\";q=9;w=1\r\n"
                               "\r\n";
  SECTION("a key with a rate limit: its own RateLimit fields only") {
    const auto c = client_sees(response, client_framing::as_upstream, false,
                               "X-Token-Expires: 2030-01-01T00:00:00Z\r\n"
                               "RateLimit-Policy: \"default\";q=10;w=60\r\n"
                               "RateLimit: \"default\";r=9;t=60\r\n");
    CHECK(c.all("X-Token-Expires") == std::vector<std::string>{"2030-01-01T00:00:00Z"});
    CHECK(c.count("X-Token-Rotated") == 0);
    CHECK(c.count("X-Token-Id") == 0);
    CHECK(c.count("X_Token_Name") == 0);
    CHECK(c.all("RateLimit") == std::vector<std::string>{"\"default\";r=9;t=60"});
    CHECK(c.all("RateLimit-Policy") == std::vector<std::string>{"\"default\";q=10;w=60"});
  }
  SECTION("a key without one: the upstream's own rate limit stays") {
    const auto c = client_sees(response, client_framing::as_upstream, false);
    CHECK(c.count("X-Token-Expires") == 0);
    CHECK(c.one("RateLimit") == "\"up\";r=5;t=1");
    CHECK(c.one("RateLimit-Policy") == "\"up\";q=9;w=1");
  }
}
