// HTTP/1.1 heads: finding their end as bytes arrive, parsing them strictly, and deciding how a
// body is framed without any ambiguity a request-smuggling attack could use.
#include "proxy/http1.hpp"

#include <catch2/catch.hpp>

#include <memory>
#include <optional>
#include <string>

using namespace tokengate::proxy::http1;

namespace {

// The tests read a result as its error, or nullopt for success.
template <class R> auto error_of(const R& r) { return r ? std::nullopt : std::optional(r.error()); }

// Parses a request head; `text` must outlive the result's views.
std::optional<head_error> request(const std::string& text, head& out) {
  return error_of(parse_request(text, out));
}

std::optional<head_error> request_error(const std::string& text) {
  head h;
  return error_of(parse_request(text, h));
}

std::optional<head_error> response_error(const std::string& text) {
  head h;
  return error_of(parse_response(text, h));
}

// scan_head's answer as an error (or nullopt) and a size.
struct scan_outcome {
  std::optional<head_error> error;
  std::size_t size = 0;
};
scan_outcome scan(std::string_view buffer, std::size_t& scanned) {
  const auto r = scan_head(buffer, scanned);
  return r ? scan_outcome{std::nullopt, *r} : scan_outcome{r.error(), 0};
}

// The request framing of a head made of a request line and `fields` (each ending in CRLF).
struct framing_result {
  std::optional<framing_error> error;
  framing body;
};
framing_result req_framing(const std::string& fields, const std::string& version = "HTTP/1.1") {
  const auto text = "POST /upload " + version + "\r\n" + fields + "\r\n";
  head h;
  REQUIRE(parse_request(text, h).has_value());
  const auto f = request_framing(h);
  return {error_of(f), f ? *f : framing{}};
}

framing_result resp_framing(const std::string& status_line, const std::string& fields,
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

parsed parsed_request(std::string text) {
  parsed p{std::make_unique<const std::string>(std::move(text)), {}};
  REQUIRE(parse_request(*p.text, p.h).has_value());
  return p;
}

} // namespace

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
  for (const char* host : {"", "example.com", "a", "api.example:8080", "127.0.0.1", "127.0.0.1:1",
                           "[::1]", "[2001:db8::1]:443", "under_score.local",
                           "xn--bcher-kva.example", "a:65535", "[::ffff:10.0.0.1]"}) {
    INFO(host);
    CHECK(valid_host(host));
  }
  for (const char* host :
       {"a/admin", "a, b",      "a,b",       "a b",   "a:b",  "a:",   ":80",
        "a:65536", "a:123456",  "user@host", "a%2fb", "a\\b", "[::1", "[::1]x",
        "[zz]",    "[1.2.3.4]", "[::1]:",    "a?b",   "a#b",  "a;b",  "[fe80::1%25eth0]",
        "a:80:80", "\x01"}) {
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

TEST_CASE("request framing accepts only exactly chunked or one plain Content-Length",
          "[http1][smuggling]") {
  SECTION("no body") {
    const auto r = req_framing("Host: a\r\n");
    CHECK(r.error == std::nullopt);
    CHECK(r.body.type == framing::kind::none);
  }
  SECTION("Content-Length") {
    const auto r = req_framing("Content-Length: 42\r\n");
    CHECK(r.error == std::nullopt);
    CHECK(r.body.type == framing::kind::length);
    CHECK(r.body.length == 42);
    CHECK(req_framing("Content-Length: 0\r\n").body.type == framing::kind::none);
    CHECK(req_framing("content-length: 007\r\n").body.length == 7);
  }
  SECTION("chunked, in any case") {
    for (const char* te : {"chunked", "Chunked", "CHUNKED"}) {
      INFO(te);
      const auto r = req_framing(std::string("Transfer-Encoding: ") + te + "\r\n");
      CHECK(r.error == std::nullopt);
      CHECK(r.body.type == framing::kind::chunked);
    }
    CHECK(req_framing("transfer-encoding:  chunked \r\n").body.type == framing::kind::chunked);
  }
  SECTION("any other Transfer-Encoding") {
    for (const char* te : {"gzip, chunked", "chunked, identity", "xchunked", "chunkedx", "gzip",
                           "identity", "chunked, chunked", "chunked;q=1", ""}) {
      INFO("Transfer-Encoding: " << te);
      CHECK(req_framing(std::string("Transfer-Encoding: ") + te + "\r\n").error ==
            framing_error::bad_transfer_encoding);
    }
  }
  SECTION("Transfer-Encoding with Content-Length, in either order") {
    CHECK(req_framing("Transfer-Encoding: chunked\r\nContent-Length: 5\r\n").error ==
          framing_error::transfer_encoding_with_length);
    CHECK(req_framing("Content-Length: 5\r\nTransfer-Encoding: chunked\r\n").error ==
          framing_error::transfer_encoding_with_length);
    CHECK(req_framing("Content-Length: 0\r\nTransfer-Encoding: chunked\r\n").error ==
          framing_error::transfer_encoding_with_length);
  }
  SECTION("two Content-Lengths, equal or not, or as a list") {
    CHECK(req_framing("Content-Length: 5\r\nContent-Length: 5\r\n").error ==
          framing_error::duplicate_content_length);
    CHECK(req_framing("Content-Length: 5\r\ncontent-length: 6\r\n").error ==
          framing_error::duplicate_content_length);
    CHECK(req_framing("Content-Length: 5, 5\r\n").error == framing_error::duplicate_content_length);
    CHECK(req_framing("Content-Length: 5,6\r\n").error == framing_error::duplicate_content_length);
  }
  SECTION("a Content-Length that is not a plain decimal") {
    for (const char* cl :
         {"+5", "-1", "0x10", "5 5", "5a", "", " ", "1e3", "99999999999999999999"}) {
      INFO("Content-Length: " << cl);
      CHECK(req_framing(std::string("Content-Length: ") + cl + "\r\n").error ==
            framing_error::bad_content_length);
    }
  }
  SECTION("Transfer-Encoding on HTTP/1.0") {
    CHECK(req_framing("Transfer-Encoding: chunked\r\n", "HTTP/1.0").error ==
          framing_error::transfer_encoding_on_http10);
    CHECK(req_framing("Content-Length: 3\r\n", "HTTP/1.0").body.length == 3);
  }
  SECTION("two Transfer-Encoding fields") {
    CHECK(req_framing("Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n").error ==
          framing_error::duplicate_transfer_encoding);
    CHECK(req_framing("Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n").error ==
          framing_error::duplicate_transfer_encoding);
  }
}

TEST_CASE("response framing follows the request method and the status", "[http1]") {
  SECTION("no body for HEAD, 1xx, 204 and 304 whatever the fields say") {
    CHECK(resp_framing("HTTP/1.1 200 OK", "Content-Length: 10\r\n", "HEAD").body.type ==
          framing::kind::none);
    CHECK(resp_framing("HTTP/1.1 200 OK", "Transfer-Encoding: chunked\r\n", "HEAD").body.type ==
          framing::kind::none);
    for (const char* line :
         {"HTTP/1.1 100 Continue", "HTTP/1.1 101 Switching Protocols", "HTTP/1.1 103 Early Hints",
          "HTTP/1.1 204 No Content", "HTTP/1.1 304 Not Modified"}) {
      INFO(line);
      const auto r = resp_framing(line, "Content-Length: 10\r\n");
      CHECK(r.error == std::nullopt);
      CHECK(r.body.type == framing::kind::none);
    }
  }
  SECTION("until close when neither Content-Length nor Transfer-Encoding is given") {
    const auto r = resp_framing("HTTP/1.1 200 OK", "Content-Type: text/plain\r\n");
    CHECK(r.error == std::nullopt);
    CHECK(r.body.type == framing::kind::until_close);
    CHECK(resp_framing("HTTP/1.0 200 OK", "").body.type == framing::kind::until_close);
  }
  SECTION("length and chunked") {
    const auto r = resp_framing("HTTP/1.1 200 OK", "Content-Length: 10\r\n");
    CHECK(r.body.type == framing::kind::length);
    CHECK(r.body.length == 10);
    CHECK(resp_framing("HTTP/1.1 200 OK", "Content-Length: 0\r\n").body.type ==
          framing::kind::none);
    CHECK(resp_framing("HTTP/1.1 200 OK", "Transfer-Encoding: Chunked\r\n").body.type ==
          framing::kind::chunked);
    CHECK(resp_framing("HTTP/1.1 404 Not Found", "Content-Length: 3\r\n", "HEAD").body.type ==
          framing::kind::none);
  }
  SECTION("ambiguous responses are refused") {
    CHECK(resp_framing("HTTP/1.1 200 OK", "Content-Length: 1\r\nContent-Length: 2\r\n").error ==
          framing_error::duplicate_content_length);
    CHECK(resp_framing("HTTP/1.1 200 OK", "Content-Length: 1\r\nTransfer-Encoding: chunked\r\n")
              .error == framing_error::transfer_encoding_with_length);
    CHECK(resp_framing("HTTP/1.1 200 OK", "Content-Length: +1\r\n").error ==
          framing_error::bad_content_length);
  }
  SECTION("a transfer coding other than chunked cannot be relayed") {
    CHECK(resp_framing("HTTP/1.1 200 OK", "Transfer-Encoding: gzip, chunked\r\n").error ==
          framing_error::bad_transfer_encoding);
    CHECK(resp_framing("HTTP/1.1 200 OK", "Transfer-Encoding: gzip\r\n").error ==
          framing_error::bad_transfer_encoding);
  }
}

TEST_CASE("keeps_alive follows the version and the Connection options", "[http1]") {
  const auto alive = [](const std::string& version, const std::string& fields) {
    return keeps_alive(parsed_request("GET / " + version + "\r\n" + fields + "\r\n").h);
  };
  CHECK(alive("HTTP/1.1", ""));
  CHECK(alive("HTTP/1.1", "Connection: keep-alive\r\n"));
  CHECK_FALSE(alive("HTTP/1.1", "Connection: close\r\n"));
  CHECK_FALSE(alive("HTTP/1.1", "Connection: Keep-Alive, CLOSE\r\n"));
  CHECK_FALSE(alive("HTTP/1.1", "Connection: keep-alive\r\nConnection: close\r\n"));
  CHECK(alive("HTTP/1.1", "Connection: X-Other\r\n"));
  CHECK_FALSE(alive("HTTP/1.0", ""));
  CHECK(alive("HTTP/1.0", "Connection: keep-alive\r\n"));
  CHECK(alive("HTTP/1.0", "Connection: Keep-Alive\r\n"));
  CHECK_FALSE(alive("HTTP/1.0", "Connection: keep-alive, close\r\n"));
  CHECK_FALSE(alive("HTTP/1.0", "Connection: close\r\n"));
}

TEST_CASE("named_in_connection and connection_of read every Connection field", "[http1]") {
  const auto p = parsed_request("GET / HTTP/1.1\r\nConnection: keep-alive, X-Secret\r\n"
                                "X-Secret: 1\r\nconnection: Upgrade,,  HTTP2-Settings \r\n\r\n");
  const auto& h = p.h;
  CHECK(named_in_connection(h, "X-Secret"));
  CHECK(named_in_connection(h, "x-secret"));
  CHECK(named_in_connection(h, "upgrade"));
  CHECK(named_in_connection(h, "http2-settings"));
  CHECK(named_in_connection(h, "keep-alive"));
  CHECK_FALSE(named_in_connection(h, "X-Sec"));
  CHECK_FALSE(named_in_connection(h, "Host"));
  const auto o = connection_of(h);
  CHECK(o.keep_alive);
  CHECK_FALSE(o.close);
  CHECK(o.names_fields);

  const auto plain = connection_of(parsed_request("GET / HTTP/1.1\r\nConnection: close\r\n\r\n").h);
  CHECK(plain.close);
  CHECK_FALSE(plain.names_fields);
  CHECK_FALSE(named_in_connection(parsed_request("GET / HTTP/1.1\r\nX: close\r\n\r\n").h, "close"));
}

TEST_CASE("iequals and reason phrases", "[http1]") {
  CHECK(iequals("Content-Length", "content-LENGTH"));
  CHECK_FALSE(iequals("Content-Length", "Content-Lengt"));
  CHECK_FALSE(iequals("a", "b"));
  CHECK(reason_phrase(404) == "Not Found");
  CHECK(reason_phrase(431) == "Request Header Fields Too Large");
  CHECK(reason_phrase(502) == "Bad Gateway");
}
