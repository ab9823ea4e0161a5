// HTTP/1.1 heads: finding their end as bytes arrive, and parsing request and status lines and
// fields strictly, refusing what a backend could read another way.
#include "proxy/http1.hpp"

#include "tests/unit/proxy/http1_checks.hpp"

#include <catch2/catch.hpp>

#include <memory>
#include <optional>
#include <string>

using namespace tokengate::proxy::http1;
using namespace tokengate::proxy::http1::testing;

TEST_CASE("scan_head finds the end of a head fed one byte at a time", "[http1]") {
  const std::string head_bytes = "GET /alerts HTTP/1.1\r\nHost: a\r\nX-Empty:\r\n\r\n";
  const std::string wire = head_bytes + "body bytes\r\n\r\n";
  std::size_t scanned = 0;
  for (std::size_t n = 0; n < head_bytes.size(); ++n) {
    INFO("bytes available: " << n);
    const auto r = scan(std::string_view(wire).substr(0, n), scanned);
    REQUIRE(r.error == std::nullopt);
    REQUIRE(r.size == 0);
  }
  const auto done = scan(std::string_view(wire).substr(0, head_bytes.size()), scanned);
  CHECK(done.error == std::nullopt);
  CHECK(done.size == head_bytes.size());
}

TEST_CASE("scan_head gives the same end whatever the split of the bytes", "[http1]") {
  const std::string head_bytes =
      "POST /a?b=c HTTP/1.1\r\nHost: example\r\nContent-Length: 4\r\nX-A: \r\n\r\n";
  const std::string wire = head_bytes + "abcd";
  for (std::size_t first = 0; first <= wire.size(); ++first) {
    for (std::size_t second = first; second <= wire.size(); second += 3) {
      INFO("splits at " << first << " and " << second);
      std::size_t scanned = 0;
      scan_outcome r;
      for (auto upto : {first, second, wire.size()}) {
        r = scan(std::string_view(wire).substr(0, upto), scanned);
        REQUIRE(r.error == std::nullopt);
        if (r.size != 0)
          break;
        REQUIRE(upto < head_bytes.size());
      }
      CHECK(r.size == head_bytes.size());
    }
  }
}

TEST_CASE("scan_head refuses a bare LF the moment it arrives", "[http1]") {
  const auto first_error = [](const std::string& wire) -> std::size_t {
    std::size_t scanned = 0;
    for (std::size_t n = 1; n <= wire.size(); ++n) {
      const auto r = scan(std::string_view(wire).substr(0, n), scanned);
      if (r.error != std::nullopt) {
        CHECK(r.error == head_error::bare_lf);
        return n;
      }
      REQUIRE(r.size == 0);
    }
    return 0;
  };
  SECTION("in the request line") {
    const std::string wire = "GET / HTTP/1.1\nHost: a\r\n\r\n";
    CHECK(first_error(wire) == wire.find('\n') + 1);
  }
  SECTION("as the very first byte") { CHECK(first_error("\nGET / HTTP/1.1\r\n\r\n") == 1); }
  SECTION("in a field line") {
    const std::string wire = "GET / HTTP/1.1\r\nHost: a\nX: b\r\n\r\n";
    CHECK(first_error(wire) == wire.find("a\n") + 2);
  }
  SECTION("in the terminating empty line") {
    const std::string wire = "GET / HTTP/1.1\r\nHost: a\r\n\nbody";
    CHECK(first_error(wire) == wire.find("\n\n") + 2);
  }
  SECTION("even when the buffer arrives whole") {
    std::size_t scanned = 0;
    const auto r = scan("GET / HTTP/1.1\r\nHost: a\r\nX: y\n\r\n", scanned);
    CHECK(r.error == head_error::bare_lf);
    CHECK(r.size == 0);
  }
}

TEST_CASE("a valid request head parses with trimmed values and case-insensitive lookup",
          "[http1]") {
  const std::string text = "GET /alerts/7?x=1 HTTP/1.1\r\n"
                           "Host: api.example\r\n"
                           "X-Padded: \t value  with inner  spaces \t\r\n"
                           "X-Empty:\r\n"
                           "Accept:text/plain\r\n"
                           "accept: application/json\r\n"
                           "\r\n";
  head h;
  REQUIRE(request(text, h) == std::nullopt);
  CHECK(h.method == "GET");
  CHECK(h.target == "/alerts/7?x=1");
  CHECK(h.version == 11);
  CHECK(h.size == text.size());
  REQUIRE(h.fields.size() == 5);
  CHECK(h.fields[0].name == "Host");
  CHECK(h.fields[0].value == "api.example");
  CHECK(h.find("x-padded") == std::optional<std::string_view>("value  with inner  spaces"));
  CHECK(h.find("HOST") == std::optional<std::string_view>("api.example"));
  CHECK(h.find("x-empty") == std::optional<std::string_view>(""));
  CHECK(h.find("ACCEPT") == std::optional<std::string_view>("text/plain")); // the first one
  CHECK_FALSE(h.find("X-Missing").has_value());
  CHECK_FALSE(h.find("Host ").has_value());

  CHECK(parsed_request("DELETE * HTTP/1.0\r\n\r\n").h.version == 10);
  CHECK(parsed_request("M-SEARCH /x HTTP/1.1\r\n\r\n").h.method == "M-SEARCH");
}

TEST_CASE("parsing a second head into the same object leaves nothing of the first", "[http1]") {
  head h;
  const std::string one = "GET /a HTTP/1.1\r\nA: 1\r\nB: 2\r\n\r\n";
  const std::string two = "PUT /b HTTP/1.0\r\nC: 3\r\n\r\n";
  REQUIRE(request(one, h) == std::nullopt);
  REQUIRE(request(two, h) == std::nullopt);
  CHECK(h.method == "PUT");
  CHECK(h.version == 10);
  REQUIRE(h.fields.size() == 1);
  CHECK(h.fields[0].name == "C");
  CHECK_FALSE(h.find("A").has_value());
}

TEST_CASE("a valid response head parses", "[http1]") {
  head h;
  const std::string text = "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nX-Up:  yes \r\n\r\n";
  REQUIRE(parse_response(text, h).has_value());
  CHECK(h.status == 404);
  CHECK(h.version == 11);
  CHECK(h.find("content-length") == std::optional<std::string_view>("0"));
  CHECK(h.find("x-up") == std::optional<std::string_view>("yes"));

  const std::string bare = "HTTP/1.0 200\r\n\r\n";
  REQUIRE(parse_response(bare, h).has_value());
  CHECK(h.status == 200);
  CHECK(h.version == 10);
  CHECK(h.fields.empty());

  const std::string empty_reason = "HTTP/1.1 204 \r\n\r\n";
  REQUIRE(parse_response(empty_reason, h).has_value());
  CHECK(h.status == 204);

  // RFC 9110 section 15: a status is from 100 to 599.
  CHECK(parse_response("HTTP/1.1 599 Last\r\n\r\n", h).has_value());
  for (const char* odd :
       {"HTTP/1.1 600 Odd\r\n\r\n", "HTTP/1.1 999 Odd\r\n\r\n", "HTTP/1.1 099 Odd\r\n\r\n"}) {
    INFO(odd);
    CHECK_FALSE(parse_response(odd, h).has_value());
  }
}

TEST_CASE("malformed field lines are refused", "[http1]") {
  const auto with_field = [](const std::string& line) {
    return request_error("GET / HTTP/1.1\r\nHost: a\r\n" + line + "\r\n\r\n");
  };
  CHECK(with_field("X-A : 1") == head_error::space_before_colon);
  CHECK(with_field("X-A\t: 1") == head_error::space_before_colon);
  CHECK(with_field(" X-A: 1") == head_error::obsolete_line_folding);
  CHECK(request_error("GET / HTTP/1.1\r\nX-A: 1\r\n  folded\r\n\r\n") ==
        head_error::obsolete_line_folding);
  CHECK(request_error("GET / HTTP/1.1\r\nX-A: 1\r\n\tfolded\r\n\r\n") ==
        head_error::obsolete_line_folding);
  CHECK(with_field("X-A: a\x01"
                   "b") == head_error::bad_field);
  CHECK(with_field(std::string("X-A: a\0b", 8)) == head_error::bad_field);
  CHECK(with_field("X-A: a\x7f") == head_error::bad_field);
  CHECK(with_field("X-A: a\rb") == head_error::bad_field);
  CHECK(with_field("X-A: a\x1b[0m") == head_error::bad_field);
  CHECK(with_field(": no name") == head_error::bad_field);
  CHECK(with_field("X(A): 1") == head_error::bad_field);
  CHECK(with_field("NoColon") == head_error::bad_field);
  CHECK(with_field("X-A:\tok\t") == std::nullopt);
  CHECK(with_field("X-A: caf\xc3\xa9") == std::nullopt); // obs-text is not a control
}

TEST_CASE("malformed request lines are refused", "[http1]") {
  CHECK(request_error("GE(T / HTTP/1.1\r\n\r\n") == head_error::bad_start_line);
  CHECK(request_error("G\"T / HTTP/1.1\r\n\r\n") == head_error::bad_start_line);
  CHECK(request_error("GET\x01 / HTTP/1.1\r\n\r\n") == head_error::bad_start_line);
  CHECK(request_error(" / HTTP/1.1\r\n\r\n") == head_error::bad_start_line);
  CHECK(request_error("GET HTTP/1.1\r\n\r\n") == head_error::bad_start_line);
  CHECK(request_error("GET  HTTP/1.1\r\n\r\n") == head_error::bad_start_line);
  CHECK(request_error("GET /a b HTTP/1.1\r\n\r\n") == head_error::bad_start_line);
  CHECK(request_error("GET /a\x7f HTTP/1.1\r\n\r\n") == head_error::bad_start_line);
  CHECK(request_error("GET /\t HTTP/1.1\r\n\r\n") == head_error::bad_start_line);
  CHECK(request_error("GET /\r\n\r\n") == head_error::bad_start_line);

  CHECK(request_error("GET / HTTP/2.0\r\n\r\n") == head_error::bad_version);
  CHECK(request_error("GET / HTTP/1.2\r\n\r\n") == head_error::bad_version);
  CHECK(request_error("GET / HTTP/0.9\r\n\r\n") == head_error::bad_version);
  for (const char* version : {"HTTX/1.1", "http/1.1", "HTTP/1.1x", "HTTP/11", "HTTP/1.1 ", "1.1",
                              "HTTP/1,1", "", "HTTP/1.10"}) {
    INFO("version: '" << version << "'");
    const auto e = request_error(std::string("GET / ") + version + "\r\n\r\n");
    CHECK(e != std::nullopt);
    CHECK(e != head_error::bare_lf);
  }
}

TEST_CASE("methods must be upper case: backends that upper-case would run another route's method",
          "[http1][spelling]") {
  for (const char* method : {"delete", "Delete", "dElEtE", "get", "GET_", "G3T", "PO$T", "*"}) {
    INFO(method);
    CHECK(request_error(std::string(method) + " / HTTP/1.1\r\nHost: x\r\n\r\n") ==
          head_error::bad_method);
  }
  for (const char* method : {"GET", "DELETE", "PROPFIND", "VERSION-CONTROL", "PATCH", "X"}) {
    INFO(method);
    CHECK(request_error(std::string(method) + " / HTTP/1.1\r\nHost: x\r\n\r\n") == std::nullopt);
  }
}

TEST_CASE("valid_host accepts names, addresses and ports, nothing a backend could misread",
          "[http1][spelling]") {
  for (const char* host :
       {"example.com", "a", "api.example:8080", "127.0.0.1", "127.0.0.1:1", "[::1]",
        "[2001:db8::1]:443", "under_score.local", "xn--bcher-kva.example", "a:65535",
        "[::ffff:10.0.0.1]", "a.example.", "a.:80"}) {
    INFO(host);
    CHECK(valid_host(host));
  }
  for (const char* host :
       {"a/admin", "a, b",      "a,b",       "a b",   "a:b",  "a:",   ":80",
        "a:65536", "a:123456",  "user@host", "a%2fb", "a\\b", "[::1", "[::1]x",
        "[zz]",    "[1.2.3.4]", "[::1]:",    "a?b",   "a#b",  "a;b",  "[fe80::1%25eth0]",
        "a:80:80", "\x01",      "",          ":",     "a..b", ".a",   ".",
        "..",      "a..",       "[::1]:80:"}) {
    INFO(host);
    CHECK_FALSE(valid_host(host));
  }
}

TEST_CASE("backend_equals reads names as CGI, WSGI and PHP backends do", "[http1][spelling]") {
  CHECK(backend_equals("X-API-Key", "x-api-key"));
  CHECK(backend_equals("X_API_KEY", "x-api-key"));
  CHECK(backend_equals("x.api~key", "x-api-key"));
  CHECK(backend_equals("X-Api_Key", "x-api-key"));
  CHECK_FALSE(backend_equals("X-API-Keys", "x-api-key"));
  CHECK_FALSE(backend_equals("XXAPIXKey", "x-api-key"));
  CHECK_FALSE(backend_equals("X-API-Ke", "x-api-key"));
}

TEST_CASE("malformed status lines are refused", "[http1]") {
  CHECK(response_error("HTTP/2.0 200 OK\r\n\r\n") == head_error::bad_version);
  CHECK(response_error("HTTP/1.1 20 OK\r\n\r\n") == head_error::bad_start_line);
  CHECK(response_error("HTTP/1.1 2000 OK\r\n\r\n") == head_error::bad_start_line);
  CHECK(response_error("HTTP/1.1 abc OK\r\n\r\n") == head_error::bad_start_line);
  CHECK(response_error("HTTP/1.1 099 Odd\r\n\r\n") == head_error::bad_start_line);
  CHECK(response_error("HTTP/1.1  200 OK\r\n\r\n") == head_error::bad_start_line);
  CHECK(response_error("HTTP/1.1 200 O\x01K\r\n\r\n") == head_error::bad_start_line);
  CHECK(response_error("HTTX/1.1 200 OK\r\n\r\n") == head_error::bad_start_line);
  CHECK(response_error("HTTP/1.1 200 OK\r\nX : 1\r\n\r\n") == head_error::space_before_colon);
}

TEST_CASE("at most 100 fields are accepted", "[http1]") {
  const auto with_fields = [](std::size_t n) {
    std::string text = "GET / HTTP/1.1\r\n";
    for (std::size_t i = 0; i < n; ++i)
      text += "X-F" + std::to_string(i) + ": v\r\n";
    return text + "\r\n";
  };
  head h;
  const auto hundred = with_fields(max_fields);
  REQUIRE(request(hundred, h) == std::nullopt);
  CHECK(h.fields.size() == 100);
  CHECK(request_error(with_fields(max_fields + 1)) == head_error::too_many_fields);
  CHECK(response_error("HTTP/1.1 200 OK\r\n" + with_fields(max_fields + 1).substr(16)) ==
        head_error::too_many_fields);
}
