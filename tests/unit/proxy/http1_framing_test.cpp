// HTTP/1.1 bodies and connections: deciding how a body is framed without any ambiguity a
// request-smuggling attack could use, keep-alive and the Connection options.
#include "proxy/http1.hpp"

#include "tests/unit/proxy/http1_checks.hpp"

#include <catch2/catch.hpp>

#include <memory>
#include <optional>
#include <string>

using namespace tokengate::proxy::http1;
using namespace tokengate::proxy::http1::testing;

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
    // RFC 9112 section 6.1: Transfer-Encoding in an HTTP/1.0 message is faulty framing.
    CHECK(resp_framing("HTTP/1.0 200 OK", "Transfer-Encoding: chunked\r\n").error ==
          framing_error::transfer_encoding_on_http10);
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
