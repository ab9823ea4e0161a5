// An https upstream's answers as some backends send them over TLS: records read ahead behind an
// answer (a stray one, a session ticket) and a body ended by the close, with and without
// close_notify.
#include "tests/integration/tls_fixture.hpp"

#include <catch2/catch.hpp>

using namespace tokengate;

TEST_CASE("data an https upstream sends after a whole answer is never taken for the next "
          "answer, and a session ticket there leaves the connection in the pool",
          "[tls][upstream][pool]") {
  test::https_upstream_fixture f;
  test::http_client client(f.gate.port());
  // The stray 408 comes in the same read as the answer, as a TLS record of its own: it waits
  // in OpenSSL's buffer, not in the socket, so the connection must not go back to the pool.
  CHECK(client.request("GET", "/public/stray-after").status == 200);
  const auto r = client.request("GET", "/public/next");
  CHECK(r.status == 200);
  CHECK(f.upstream.last().target == "/public/next");
  CHECK(f.upstream.connections() == 2);

  // A TLS 1.3 session ticket behind an answer is no answer: the connection stays in the pool.
  CHECK(client.request("GET", "/public/ticket-after").status == 200);
  CHECK(client.request("GET", "/public/after-ticket").status == 200);
  CHECK(f.upstream.last().target == "/public/after-ticket");
  CHECK(f.upstream.connections() == 2);
}

TEST_CASE("an https upstream's body ended by its close is whole after close_notify, cut short "
          "without it",
          "[tls][upstream]") {
  test::https_upstream_fixture f;
  test::raw_connection whole(f.gate.port());
  whole.send("GET /public/close HTTP/1.1\r\nHost: x\r\n\r\n");
  const auto complete = whole.read_until("\r\n0\r\n\r\n");
  CHECK(test::status_of(complete) == 200);
  CHECK(complete.ends_with("\r\n0\r\n\r\n"));

  // A close without close_notify may be an attacker's cut: the client is not told the body
  // ended (no last chunk), and the connection closes.
  test::raw_connection cut(f.gate.port());
  cut.send("GET /public/close?cut=1 HTTP/1.1\r\nHost: x\r\n\r\n");
  const auto truncated = cut.read_until_close();
  CHECK(test::status_of(truncated) == 200);
  CHECK(truncated.find("\"target\"") != std::string::npos);
  CHECK_FALSE(truncated.ends_with("\r\n0\r\n\r\n"));
}

TEST_CASE("an HTTP/1.0 client over TLS is told of a body the https upstream cut short: no "
          "close_notify",
          "[tls][upstream]") {
  test::https_upstream_fixture f(true);
  // An HTTP/1.0 client's body ends with the connection; over TLS, close_notify says it is whole.
  test::tls_client whole(f.gate.port(), test::trusting(f.ca.cert_file()));
  whole.send("GET /public/close HTTP/1.0\r\n\r\n");
  const auto r = whole.read_response();
  CHECK(r.status == 200);
  CHECK(r.json().at("target") == "/public/close");

  // The upstream's close without close_notify may be a cut: the client's close has none either,
  // so the client cannot take the part it got for the whole body.
  test::tls_client cut(f.gate.port(), test::trusting(f.ca.cert_file()));
  cut.send("GET /public/close?cut=1 HTTP/1.0\r\n\r\n");
  CHECK_THROWS(cut.read_response());
}

TEST_CASE("an https upstream connection tokengate closes while idle ends with its close_notify",
          "[tls][upstream][pool]") {
  test::https_upstream_fixture f;
  test::http_client client(f.gate.port());
  SECTION("one the upstream's stray bytes made unusable") {
    CHECK(client.request("GET", "/public/stray-after").status == 200);
  }
  SECTION("the pool's, at a stop") {
    CHECK(client.request("GET", "/public/pooled").status == 200);
    f.gate.stop();
  }
  // An upstream that keeps its TLS sessions in a cache drops one whose connection ends without
  // close_notify (OpenSSL without SSL_OP_IGNORE_UNEXPECTED_EOF does).
  CHECK(test::eventually([&] { return f.upstream.tls_closed_with_notify() == 1; }));
  CHECK(f.upstream.tls_closed_without_notify() == 0);
}
