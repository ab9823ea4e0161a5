// The phases of a request that need no I/O: admission of a head, the admin endpoints' answers,
// and the access-log record.
#include "proxy/access_record.hpp"
#include "proxy/admin_endpoints.hpp"
#include "proxy/admission.hpp"

#include <boost/json.hpp>
#include <catch2/catch.hpp>

#include <memory>
#include <string>

using namespace tokengate::proxy;

namespace {

// A head parsed from `text`, which it keeps alive.
struct request_head {
  std::unique_ptr<const std::string> text;
  http1::head h;
  explicit request_head(std::string t) : text(std::make_unique<const std::string>(std::move(t))) {
    REQUIRE(http1::parse_request(*text, h).has_value());
  }
};

// A head, its admission, and what the admission's views point into.
struct admission_case {
  request_head head;
  normalized_target target;
  boost::system::result<admitted, http1::refusal> result;
  explicit admission_case(std::string text)
      : head(std::move(text)), result(admit_request(head.h, target)) {}
  const admitted* operator->() const { return &*result; }
};

http1::refusal refused(const std::string& text) {
  admission_case c(text);
  INFO(text);
  REQUIRE_FALSE(c.result.has_value());
  return c.result.error();
}

} // namespace

TEST_CASE("admission takes a plain request and reads its key and framing", "[admission]") {
  admission_case a("POST /alerts HTTP/1.1\r\nHost: x\r\nX-API-Key: tg_k\r\nContent-Length: 5\r\n"
                   "Expect: 100-continue\r\n\r\n");
  REQUIRE(a.result.has_value());
  CHECK(a->key == "tg_k");
  CHECK(a->body.type == http1::framing::kind::length);
  CHECK(a->body.length == 5);
  CHECK(a->keep_alive);
  CHECK(a->want_continue);

  admission_case old("GET / HTTP/1.0\r\n\r\n");
  REQUIRE(old.result.has_value());
  CHECK_FALSE(old->key.has_value());
  CHECK_FALSE(old->keep_alive);
  CHECK_FALSE(old->want_continue);
  // 100-continue without a body has nothing to wait for.
  admission_case no_body("GET / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n\r\n");
  REQUIRE(no_body.result.has_value());
  CHECK_FALSE(no_body->want_continue);
}

TEST_CASE("admission refuses, in order, with the answer the client gets", "[admission]") {
  // Framing first: its problem is named even when the target is bad too.
  CHECK(refused("POST /a%2F HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n")
            .message == "more than one Content-Length");
  CHECK(refused("GET /a%2F HTTP/1.1\r\n\r\n").message ==
        "request path contains an encoded '/', '\\' or NUL");
  CHECK(refused("GET / HTTP/1.1\r\n\r\n").message == "missing Host header");
  CHECK(refused("GET / HTTP/1.1\r\nHost: a\r\nhost: b\r\n\r\n").message ==
        "more than one Host header");
  CHECK(refused("GET / HTTP/1.1\r\nHost: a/b\r\n\r\n").message == "invalid Host header");
  CHECK(refused("GET / HTTP/1.1\r\nHost: a\r\nX-API-Key: a\r\nx-api-key: b\r\n\r\n").message ==
        "more than one X-API-Key header");
  const auto expect = refused("GET / HTTP/1.1\r\nHost: a\r\nExpect: 200-ok\r\n\r\n");
  CHECK(expect.status == 417);
  // CONNECT first: tokengate never tunnels, whatever its target.
  const auto connect = refused("CONNECT /public HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\n"
                               "Content-Length: 2\r\n\r\n");
  CHECK(connect.status == 501);
  CHECK(connect.message == "CONNECT is not supported: tokengate relays requests, not tunnels");
  CHECK(refused("GET / HTTP/1.1\r\n\r\n").status == 400);
}

TEST_CASE("only idempotent requests with their whole body in hand are retried", "[admission]") {
  const http1::framing none{};
  const http1::framing five{http1::framing::kind::length, 5};
  const http1::framing chunked{http1::framing::kind::chunked, 0};
  for (auto m : {"GET", "HEAD", "OPTIONS", "TRACE", "DELETE", "PUT"}) {
    INFO(m);
    CHECK(retryable(m, none, 0));
    CHECK(retryable(m, five, 5));
    CHECK_FALSE(retryable(m, five, 4));
    CHECK_FALSE(retryable(m, chunked, 0));
  }
  CHECK_FALSE(retryable("POST", none, 0));
  CHECK_FALSE(retryable("PATCH", five, 5));
  CHECK_FALSE(retryable("get", none, 0));
}

TEST_CASE("the admin endpoints answer health, readiness, 404 and 405", "[admin]") {
  const admin_state ready{false, true};
  CHECK(admin_response("GET", "/healthz", ready).body == R"({"status":"ok"})");
  CHECK(admin_response("GET", "/healthz", {true, false}).status == 200);
  CHECK(admin_response("HEAD", "/readyz", ready).status == 200);
  CHECK(admin_response("GET", "/readyz", ready).body == R"({"status":"ready"})");
  const auto draining = admin_response("GET", "/readyz", {true, true});
  CHECK(draining.status == 503);
  CHECK(draining.body == R"({"status":"draining"})");
  CHECK(admin_response("GET", "/readyz", {false, false}).body ==
        R"({"status":"token store unavailable"})");
  CHECK(admin_response("GET", "/api-tokens", ready).status == 404);
  // A failed certificate reload: still ready (the previous certificate is served), and said so.
  admin_state tls_failed{false, true};
  tls_failed.tls_reload_error = "TLS key /k.pem does not match certificate /c.pem";
  const auto reported = admin_response("GET", "/readyz", tls_failed);
  CHECK(reported.status == 200);
  CHECK(
      reported.body ==
      R"({"status":"ready","tls_reload_error":"TLS key /k.pem does not match certificate /c.pem"})");
  const auto post = admin_response("POST", "/healthz", ready);
  CHECK(post.status == 405);
  CHECK(post.allow == "GET, HEAD");
  CHECK(boost::json::parse(post.body).as_object().at("message").as_string() ==
        "method not allowed");
}

TEST_CASE("an access record is one JSON line with the README's fields", "[log]") {
  access_record r;
  r.method = "GET";
  r.path = "/alerts/7";
  r.status = 200;
  r.token_id = "7705057b-7b6a-4ba8-aa04-23ba3aa6ec28";
  r.client = "127.0.0.1";
  r.duration_ms = 1.5;
  r.bytes_out = 451;
  auto line = r.to_line();
  CHECK(line.find('\n') == std::string::npos);
  auto o = boost::json::parse(line).as_object();
  CHECK(o.at("method").as_string() == "GET");
  CHECK(o.at("path").as_string() == "/alerts/7");
  CHECK(o.at("status").to_number<int>() == 200);
  CHECK(o.at("token_id").as_string() == r.token_id);
  CHECK(o.at("listener").as_string() == "main");
  CHECK_FALSE(o.contains("upstream_ms"));
  r.upstream_ms = 1.25;
  r.admin = true;
  o = boost::json::parse(r.to_line()).as_object();
  CHECK(o.at("upstream_ms").to_number<double>() == 1.25);
  CHECK(o.at("listener").as_string() == "admin");
}

TEST_CASE("in fleet mode /readyz tells the database's state and the staleness", "[admin][fleet]") {
  admin_state never{false, true, fleet_state{false, false, 0}};
  const auto waiting = admin_response("GET", "/readyz", never);
  CHECK(waiting.status == 503);
  CHECK(waiting.body == R"({"status":"not synced with the token database yet"})");
  const auto cut_off =
      admin_response("GET", "/readyz", {false, true, fleet_state{true, false, 5320}});
  CHECK(cut_off.status == 200);
  CHECK(cut_off.body == R"({"status":"ready","database":"unreachable","staleness_ms":5320})");
  const auto fine = admin_response("GET", "/readyz", {false, true, fleet_state{true, true, 12}});
  CHECK(fine.body == R"({"status":"ready","database":"connected","staleness_ms":12})");
  CHECK(admin_response("GET", "/readyz", {true, true, fleet_state{true, true, 0}}).status == 503);
}
