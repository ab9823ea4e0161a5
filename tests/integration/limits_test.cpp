// Framing defences, limits and upstream failures, against the real server (README "The proxy").
#include "tests/integration/proxy_fixture.hpp"

#include <catch2/catch.hpp>

#include <thread>

using namespace tokengate;
using namespace std::chrono_literals;
using test::proxy_fixture;

namespace {

std::string with_key(const std::string& request_line, const std::string& key,
                     const std::string& rest) {
  return request_line + "\r\nHost: x\r\nX-API-Key: " + key + "\r\n" + rest;
}

} // namespace

TEST_CASE_METHOD(proxy_fixture, "request smuggling attempts get 400 and a closed connection",
                 "[framing]") {
  auto t = gate.create_token("t", {"AlertModify"});
  const std::string post = "POST /alerts HTTP/1.1";
  const std::pair<std::string, std::string> attacks[] = {
      {"TE other than chunked",
       with_key(post, t.value, "Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n")},
      {"TE chunked then identity",
       with_key(post, t.value, "Transfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n")},
      {"TE xchunked", with_key(post, t.value, "Transfer-Encoding: xchunked\r\n\r\n")},
      {"TE and CL",
       with_key(post, t.value, "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n")},
      {"CL and TE",
       with_key(post, t.value, "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n")},
      {"two equal CLs",
       with_key(post, t.value, "Content-Length: 5\r\nContent-Length: 5\r\n\r\nhello")},
      {"two different CLs",
       with_key(post, t.value, "Content-Length: 5\r\nContent-Length: 6\r\n\r\nhello!")},
      {"CL list", with_key(post, t.value, "Content-Length: 5, 5\r\n\r\nhello")},
      {"TE on HTTP/1.0",
       with_key("POST /alerts HTTP/1.0", t.value, "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n")},
      {"space before colon", with_key(post, t.value, "Content-Length : 5\r\n\r\nhello")},
      {"obsolete folding", with_key(post, t.value, "X-Long: a\r\n b\r\nContent-Length: 0\r\n\r\n")},
      {"bare LF in chunk size line",
       with_key(post, t.value, "Transfer-Encoding: chunked\r\n\r\n5\nhello\r\n0\r\n\r\n")},
      {"bare LF after chunk data",
       with_key(post, t.value, "Transfer-Encoding: chunked\r\n\r\n5\r\nhello\n0\r\n\r\n")},
      {"chunk extensions over 16 KiB",
       with_key(post, t.value,
                "Transfer-Encoding: chunked\r\n\r\n1;" + std::string(17 * 1024, 'e') +
                    "\r\nx\r\n0\r\n\r\n")},
      {"101 trailer fields", with_key(post, t.value,
                                      [] {
                                        std::string body =
                                            "Transfer-Encoding: chunked\r\n\r\n1\r\nx\r\n0\r\n";
                                        for (int i = 0; i < 101; ++i)
                                          body += "X-T: 1\r\n";
                                        return body + "\r\n";
                                      }())},
      {"bare LF in the head", "POST /alerts HTTP/1.1\nHost: x\n\n"},
      {"NUL in a header", with_key(post, t.value, std::string("X-A: a\0b\r\n\r\n", 12))},
      {"empty Host", "GET /alerts HTTP/1.1\r\nHost: \r\nX-API-Key: " + t.value + "\r\n\r\n"},
      {"empty Host label",
       "GET /alerts HTTP/1.1\r\nHost: a..b\r\nX-API-Key: " + t.value + "\r\n\r\n"},
      {"overlong UTF-8 in the path",
       with_key("GET /public/..%c0%afalerts/1 HTTP/1.1", t.value, "\r\n")},
      {"a segment of dots and spaces",
       with_key("GET /public/..%20/alerts/1 HTTP/1.1", t.value, "\r\n")},
  };
  for (const auto& [name, bytes] : attacks) {
    INFO(name);
    upstream.clear();
    test::raw_connection c(gate.port());
    c.send(bytes);
    const auto answer = c.read_until("}");
    CHECK(test::status_of(answer) == 400);
    CHECK(answer.find("Connection: close") != std::string::npos);
    CHECK(answer.find("\"message\"") != std::string::npos);
    CHECK(c.closed_within(3s));
    // Nothing of the refused request reached the upstream: not the request, and not its body
    // as a request of its own.
    CHECK(upstream.requests().empty());
  }
  // The sidecar goes on serving new connections.
  CHECK(test::request(gate.port(), "POST", "/alerts", {{"X-API-Key", t.value}}, "ok").status ==
        200);
}

TEST_CASE_METHOD(proxy_fixture,
                 "CONNECT is 501 and never reaches the upstream, whose connection a tunnel would "
                 "take from the pool",
                 "[framing]") {
  // README "The proxy": tokengate relays requests, never tunnels. A CONNECT with a path on an
  // open route is refused before the upstream sees it, and the connection closes.
  for (const std::string target : {"/public/x", "/alerts"}) {
    INFO(target);
    test::raw_connection c(gate.port());
    c.send("CONNECT " + target + " HTTP/1.1\r\nHost: x\r\n\r\n");
    const auto answer = c.read_until_close();
    CHECK(test::status_of(answer) == 501);
    CHECK(answer.find(R"({"message":"CONNECT is not supported: tokengate relays requests, )"
                      R"(not tunnels"})") != std::string::npos);
    CHECK(answer.find("Connection: close") != std::string::npos);
  }
  CHECK(upstream.requests().empty());
  CHECK(test::request(gate.port(), "GET", "/public/x").status == 200);
}

TEST_CASE_METHOD(proxy_fixture, "HTTP versions other than 1.0 and 1.1 get 505", "[framing]") {
  for (const std::string version : {"HTTP/2.0", "HTTP/1.2", "HTTP/0.9", "HTTP/9.9"}) {
    INFO(version);
    test::raw_connection c(gate.port());
    c.send("GET /public/x " + version + "\r\nHost: x\r\n\r\n");
    const auto answer = c.read_until_close();
    CHECK(test::status_of(answer) == 505);
    CHECK(answer.find(R"({"message":"only HTTP/1.0 and HTTP/1.1 are supported"})") !=
          std::string::npos);
  }
  CHECK(upstream.requests().empty());
}

TEST_CASE("oversized headers get 431, slow headers and idle connections are closed", "[limits]") {
  auto settings = test::example_routes();
  settings.limits.max_header_bytes = 4096;
  settings.limits.header_timeout = 300ms;
  settings.limits.idle_timeout = 400ms;
  proxy_fixture f(settings);

  test::raw_connection big(f.gate.port());
  big.send("GET /public HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(5000, 'a') + "\r\n\r\n");
  CHECK(test::status_of(big.read_until("}")) == 431);
  CHECK(big.closed_within(2s));

  test::raw_connection many(f.gate.port());
  std::string fields;
  for (int i = 0; i < 101; ++i)
    fields += "X-F" + std::to_string(i) + ": v\r\n";
  many.send("GET /public HTTP/1.1\r\nHost: x\r\n" + fields + "\r\n");
  CHECK(test::status_of(many.read_until("}")) == 431);

  // A head that never completes: closed after header_timeout, long before idle_timeout * 2.
  test::raw_connection slow(f.gate.port());
  slow.send("GET /public HTTP/1.1\r\nHost: x\r\n");
  CHECK(slow.closed_within(3s));
  // A connection that sends nothing at all is closed by the header timeout too.
  test::raw_connection silent(f.gate.port());
  CHECK(silent.closed_within(3s));

  // An idle keep-alive connection is closed after idle_timeout, not before.
  test::http_client idle(f.gate.port());
  CHECK(idle.request("GET", "/public").status == 200);
  std::this_thread::sleep_for(100ms);
  CHECK(idle.request("GET", "/public").status == 200);
  CHECK(idle.closed_by_peer(3s));
  CHECK(f.upstream.requests().size() == 2);

  // A body that stops coming for idle_timeout is a 408, to the proxy and to the token API, and
  // nothing of it reaches the upstream as a request.
  for (const std::string target : {"/public/upload", "/api-tokens"}) {
    INFO(target);
    test::raw_connection stalled(f.gate.port());
    stalled.send("POST " + target + " HTTP/1.1\r\nHost: x\r\nX-API-Key: " + f.gate.admin_key() +
                 "\r\nContent-Length: 10\r\n\r\nabc");
    const auto answer = stalled.read_until("}");
    CHECK(test::status_of(answer) == 408);
    CHECK(answer.find(R"({"message":"request body timed out: nothing arrived for )"
                      R"(idle_timeout_ms"})") != std::string::npos);
    CHECK(stalled.closed_within(3s));
  }
  CHECK(f.upstream.requests().size() == 2);
}

TEST_CASE_METHOD(proxy_fixture,
                 "a head of max_header_bytes or of 100 fields is taken, one byte or one field "
                 "more gets 431 and a closed connection",
                 "[limits]") {
  // README "Limits": max_header_bytes (16384 by default) is the whole head, its blank line
  // included; "more than 100 header fields" counts Host too. The heads carry no key: a head
  // that is taken is answered 401, and kept alive, without the upstream.
  const auto max = gate.settings().limits.max_header_bytes;
  REQUIRE(max == 16384);
  const std::string start = "GET /alerts/7 HTTP/1.1\r\nHost: x\r\nX-Big: ";
  const auto head_of = [&](std::size_t size) {
    return start + std::string(size - start.size() - 4, 'a') + "\r\n\r\n";
  };
  const auto fields = [](int n) { // Host and n - 1 others
    std::string head = "GET /alerts/7 HTTP/1.1\r\nHost: x\r\n";
    for (int i = 1; i < n; ++i)
      head += "X-F" + std::to_string(i) + ": v\r\n";
    return head + "\r\n";
  };
  for (const auto& [within, over] :
       {std::pair{head_of(max), head_of(max + 1)}, std::pair{fields(100), fields(101)}}) {
    INFO("taken: " << within.size() << " bytes, refused: " << over.size() << " bytes");
    test::raw_connection taken(gate.port());
    taken.send(within);
    CHECK(test::status_of(taken.read_until("}")) == 401);
    CHECK_FALSE(taken.closed_within(100ms)); // kept alive

    test::raw_connection refused(gate.port());
    refused.send(over);
    CHECK(test::status_of(refused.read_until("}")) == 431);
    CHECK(refused.closed_within(2s));
  }
  CHECK(upstream.requests().empty());
}

TEST_CASE("between requests a keep-alive connection takes what comes next in any shape, and "
          "closes on the client's close or a stop, long before idle_timeout",
          "[limits]") {
  proxy_fixture f;
  test::raw_connection c(f.gate.port());
  c.send("GET /public/x HTTP/1.1\r\nHost: x\r\n\r\n");
  REQUIRE(test::status_of(c.read_until("}")) == 200);
  // Each pause lets the sidecar settle into its wait for the next request before more comes.
  SECTION("empty lines, one split in two, then a head in three pieces") {
    for (const auto piece : test::next_request_in_pieces) {
      std::this_thread::sleep_for(50ms);
      REQUIRE(c.send(piece));
    }
    CHECK(test::status_of(c.read_until("}")) == 200);
    CHECK(f.upstream.requests().size() == 2);
  }
  SECTION("the client's close") {
    std::this_thread::sleep_for(50ms);
    c.shutdown_send();
    CHECK(c.closed_within(3s));
  }
  SECTION("a stop") {
    std::this_thread::sleep_for(50ms);
    f.gate.stop();
    CHECK(c.closed_within(3s));
  }
}

TEST_CASE("connections above max_connections are refused", "[limits]") {
  auto settings = test::example_routes();
  settings.limits.max_connections = 5;
  proxy_fixture f(settings);
  std::vector<std::unique_ptr<test::http_client>> held;
  for (int i = 0; i < 5; ++i) {
    held.push_back(std::make_unique<test::http_client>(f.gate.port()));
    REQUIRE(held.back()->request("GET", "/public").status == 200);
  }
  test::raw_connection extra(f.gate.port());
  extra.send("GET /public HTTP/1.1\r\nHost: x\r\n\r\n");
  // The whole answer, byte for byte: a Content-Length off by one would hang or cut a client.
  const std::string body = R"({"message":"too many open connections"})";
  CHECK(extra.read_until_close(3s) == "HTTP/1.1 503 Service Unavailable\r\n"
                                      "Content-Type: application/json\r\n"
                                      "Content-Length: " +
                                          std::to_string(body.size()) +
                                          "\r\n"
                                          "Cache-Control: no-store\r\n"
                                          "Connection: close\r\n\r\n" +
                                          body);
  // The refusal is counted (README "Metrics"); the admin listener's own limit is apart.
  const auto metrics = test::request(f.gate.admin_port(), "GET", "/metrics").body;
  CHECK_THAT(metrics, Catch::Contains("\ntokengate_connections_refused_total 1\n"));
  held.pop_back();
  // Once one closes, a new one is served.
  bool served = false;
  for (int i = 0; i < 50 && !served; ++i) {
    test::raw_connection again(f.gate.port());
    again.send("GET /public HTTP/1.1\r\nHost: x\r\n\r\n");
    served = test::status_of(again.read_until("}")) == 200;
    if (!served)
      std::this_thread::sleep_for(20ms);
  }
  CHECK(served);
}

TEST_CASE_METHOD(proxy_fixture,
                 "a full admin listener closes its longest-idle connection "
                 "for a new one",
                 "[limits][admin]") {
  SECTION("64 idle keep-alive connections") {
    std::vector<std::unique_ptr<test::http_client>> idle;
    for (int i = 0; i < 64; ++i) {
      idle.push_back(std::make_unique<test::http_client>(gate.admin_port()));
      REQUIRE(idle.back()->request("GET", "/healthz").status == 200);
      if (i == 0)
        std::this_thread::sleep_for(50ms); // the first is idle longest, by a clear margin
    }
    CHECK(test::request(gate.admin_port(), "GET", "/healthz").status == 200);
    CHECK(idle.front()->closed_by_peer());
    CHECK(idle.back()->request("GET", "/healthz").status == 200);
  }
  SECTION("64 connections that send nothing") {
    std::vector<std::unique_ptr<test::raw_connection>> silent;
    for (int i = 0; i < 64; ++i)
      silent.push_back(std::make_unique<test::raw_connection>(gate.admin_port()));
    std::this_thread::sleep_for(100ms); // all accepted
    CHECK(test::request(gate.admin_port(), "GET", "/readyz").status == 200);
  }
}

TEST_CASE_METHOD(proxy_fixture,
                 "a new admin connection is refused only when all 64 are in the "
                 "middle of a request, and not counted as a max_connections refusal",
                 "[limits][admin]") {
  std::vector<std::unique_ptr<test::raw_connection>> busy;
  for (int i = 0; i < 64; ++i) {
    busy.push_back(std::make_unique<test::raw_connection>(gate.admin_port()));
    REQUIRE(busy.back()->send(i == 0 ? "GET /metrics HTTP/1.1\r\n" : "GET /healthz HTTP/1.1\r\n"));
  }
  std::this_thread::sleep_for(200ms); // every half head read
  test::raw_connection extra(gate.admin_port());
  extra.send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
  const auto refused = extra.read_until_close(1s);
  CHECK(test::status_of(refused) == 503);
  CHECK_THAT(refused, Catch::Contains("too many open connections"));
  // A busy one finishes its request: the refusal is not in tokengate_connections_refused_total.
  REQUIRE(busy.front()->send("Host: x\r\nConnection: close\r\n\r\n"));
  const auto metrics = busy.front()->read_until_close(1s);
  CHECK(test::status_of(metrics) == 200);
  CHECK_THAT(metrics, Catch::Contains("\ntokengate_connections_refused_total 0\n"));
}

TEST_CASE_METHOD(proxy_fixture, "an admin request head must be complete within 2 s",
                 "[limits][admin]") {
  REQUIRE(gate.settings().limits.header_timeout == 10s);
  test::raw_connection slow(gate.admin_port());
  REQUIRE(slow.send("GET /healthz HTTP/1.1\r\n"));
  const auto start = std::chrono::steady_clock::now();
  CHECK(slow.closed_within(5s));
  const auto took = std::chrono::steady_clock::now() - start;
  CHECK(took > 1500ms);
  CHECK(took < 3s);
}

TEST_CASE_METHOD(proxy_fixture,
                 "admin connections closed at the 2 s head limit free their slots as they close",
                 "[limits][admin]") {
  // A full listener of heads that never end (which no eviction closes: see above).
  std::vector<std::unique_ptr<test::raw_connection>> slow;
  for (int i = 0; i < 64; ++i) {
    slow.push_back(std::make_unique<test::raw_connection>(gate.admin_port()));
    REQUIRE(slow.back()->send("GET /metr"));
  }
  for (auto& c : slow)
    CHECK(c->closed_within(5s));
  // Closed means gone: nothing of theirs is drained after the close, holding the slot on.
  CHECK(test::request(gate.admin_port(), "GET", "/healthz").status == 200);
}

TEST_CASE("a next head that never comes whole costs the client nothing of the answer before it",
          "[limits]") {
  auto settings = test::example_routes();
  settings.limits.header_timeout = 1000ms;
  proxy_fixture f(settings);
  test::raw_connection c(f.gate.port());
  // An answer larger than the socket buffers hold for a client that reads nothing yet, and
  // half of the next head; that head's time runs out while part of the answer is still queued.
  c.send(
      "GET /public/download?bytes=200000 HTTP/1.1\r\nHost: x\r\n\r\nGET /public/b HTTP/1.1\r\nHo");
  std::this_thread::sleep_for(2000ms);
  c.send("st: x\r\n\r\n"); // too late: dropped, and no reset for it
  const auto got = c.read_until_close(5000ms);
  const auto body_at = got.find("\r\n\r\n");
  REQUIRE(body_at != std::string::npos);
  CHECK(got.size() - body_at - 4 == 200000);
}

TEST_CASE("upstream down is 502, upstream slow is 504, and the sidecar keeps serving",
          "[upstream]") {
  auto settings = test::example_routes();
  settings.limits.upstream_timeout = 500ms;
  settings.limits.upstream_connect_timeout = 500ms;
  std::uint16_t dead_port = 0;
  {
    test::test_upstream gone; // bind a port, then free it: nothing listens there
    dead_port = gone.port();
  }
  SECTION("unreachable") {
    test::sidecar gate(dead_port, settings);
    auto r = test::request(gate.port(), "GET", "/public/x");
    CHECK(r.status == 502);
    CHECK(r.header("Content-Type") == "application/json");
    CHECK_THAT(r.message(), Catch::Contains("upstream"));
    // The token API does not depend on the upstream.
    CHECK(test::request(gate.port(), "GET", "/api-tokens", {{"X-API-Key", gate.admin_key()}})
              .status == 200);
    CHECK(test::request(gate.port(), "GET", "/public/x").status == 502);
  }
  SECTION("slow") {
    proxy_fixture f(settings);
    auto r = f.get("/public/slow?ms=2000");
    CHECK(r.status == 504);
    CHECK(r.header("Content-Type") == "application/json");
    CHECK_THAT(r.message(), Catch::Contains("timed out"));
    // The same on a reused upstream connection, where the first answer bytes are awaited
    // before the request counts as delivered.
    test::http_client client(f.gate.port());
    REQUIRE(client.request("GET", "/public/warm").status == 200);
    const auto reused = client.request("GET", "/public/slow?ms=2000");
    CHECK(reused.status == 504);
    CHECK(reused.message() == "upstream timed out");
    CHECK(f.get("/public/x").status == 200);
    CHECK(test::request(f.gate.port(), "GET", "/api-tokens", {{"X-API-Key", f.gate.admin_key()}})
              .status == 200);
  }
}

TEST_CASE("a connection to the upstream not made within upstream_connect_timeout_ms is 502",
          "[upstream][limits]") {
  test::black_hole hole; // every connection to it hangs in SYN-SENT
  auto settings = test::example_routes();
  settings.limits.upstream_connect_timeout = 500ms;
  test::sidecar gate(hole.port(), settings);
  const auto started = std::chrono::steady_clock::now();
  const auto r = test::request(gate.port(), "GET", "/public/x");
  const auto took = std::chrono::steady_clock::now() - started;
  CHECK(r.status == 502);
  CHECK(r.message() == "upstream unreachable");
  CHECK(took >= 450ms); // the coarse clock's tick below the limit; a slow host only adds
  CHECK(took < 5s);
}

TEST_CASE_METHOD(proxy_fixture, "a 101 nobody asked for is 502, and none of its bytes pass",
                 "[upstream]") {
  test::raw_connection c(gate.port());
  c.send("GET /public/switch HTTP/1.1\r\nHost: x\r\n\r\n");
  const auto answer = c.read_until_close();
  CHECK(test::status_of(answer) == 502);
  CHECK(answer.find("upstream switched protocols unasked") != std::string::npos);
  CHECK(answer.find("other protocol") == std::string::npos);
  CHECK(answer.find("101") == std::string::npos);
}

TEST_CASE("a pause of upstream_timeout_ms in the upstream's body ends the answer where it is and "
          "closes the connection",
          "[upstream][limits]") {
  auto settings = test::example_routes();
  settings.limits.upstream_timeout = 500ms;
  proxy_fixture f(settings);
  test::raw_connection c(f.gate.port());
  c.send("GET /public/stall-body?ms=2000 HTTP/1.1\r\nHost: x\r\n\r\n");
  // The head and the first 5 bytes pass; then the connection closes short of Content-Length,
  // so the client cannot take the answer for whole.
  const auto answer = c.read_until_close(4000ms);
  CHECK(test::status_of(answer) == 200);
  CHECK(answer.find("Content-Length: 10\r\n") != std::string::npos);
  CHECK(answer.ends_with("\r\n\r\nfirst"));
  CHECK(f.get("/public/x").status == 200);
}

TEST_CASE("upstream_timeout_ms bounds the whole response head, however it trickles, and "
          "interim answers are capped",
          "[upstream]") {
  auto settings = test::example_routes();
  settings.limits.upstream_timeout = 1000ms;
  proxy_fixture f(settings);
  const auto started = std::chrono::steady_clock::now();
  const auto took = [&] { return std::chrono::steady_clock::now() - started; };
  SECTION("a head a byte every 100 ms (about 8 s in all)") {
    const auto r = f.get("/public/trickle-head?ms=100");
    CHECK(r.status == 504);
    CHECK(r.message() == "upstream timed out");
    CHECK(took() < 3s);
  }
  SECTION("a 103 every 300 ms, ten of them") {
    test::raw_connection c(f.gate.port());
    c.send("GET /public/hints?n=10&ms=300 HTTP/1.1\r\nHost: x\r\n\r\n");
    const auto text = c.read_until("}");
    CHECK(text.find("HTTP/1.1 103") == 0); // the hints that came in time are relayed
    CHECK(text.find("HTTP/1.1 504") != std::string::npos);
    CHECK(text.find("upstream timed out") != std::string::npos);
    CHECK(took() < 3s);
  }
  SECTION("more than 32 interim answers") {
    test::raw_connection c(f.gate.port());
    c.send("GET /public/hints?n=40&ms=0 HTTP/1.1\r\nHost: x\r\n\r\n");
    const auto text = c.read_until("}");
    CHECK(text.find("HTTP/1.1 502") != std::string::npos);
    CHECK(text.find("upstream sent too many interim (1xx) answers") != std::string::npos);
  }
  SECTION("fewer, in time") {
    test::raw_connection c(f.gate.port());
    c.send("GET /public/hints?n=5&ms=50 HTTP/1.1\r\nHost: x\r\n\r\n");
    const auto text = c.read_until("}");
    CHECK(text.find("HTTP/1.1 103") == 0);
    CHECK(text.find("HTTP/1.1 200") != std::string::npos);
  }
  // An answer in time, a byte every 5 ms.
  CHECK(f.get("/public/trickle-head?ms=5").status == 200);
}

TEST_CASE_METHOD(proxy_fixture,
                 "a body whose framing breaks before a byte went out is a 502 the client sees",
                 "[upstream]") {
  const auto r = get("/public/bad-chunk");
  CHECK(r.status == 502);
  CHECK(r.message() == "upstream sent a malformed response");
  CHECK(get("/public/x").status == 200);
}

TEST_CASE_METHOD(proxy_fixture, "a response head over 64 KiB is a 502, even when it came whole",
                 "[upstream]") {
  test::raw_connection within(gate.port()); // the test's own client takes no such head
  within.send("GET /public/big-head?kib=60 HTTP/1.1\r\nHost: x\r\n\r\n");
  CHECK(test::status_of(within.read_until("\r\n\r\nok")) == 200);
  const auto r = get("/public/big-head?kib=70");
  CHECK(r.status == 502);
  CHECK(r.message() == "upstream sent a malformed response");
}

TEST_CASE("upstream_idle_timeout_ms closes a pooled upstream connection left unused, also with "
          "no client connected",
          "[limits][upstream][pool]") {
  auto settings = test::example_routes();
  settings.limits.upstream_idle_timeout = 500ms;
  proxy_fixture f(settings);
  {
    test::http_client client(f.gate.port());
    CHECK(client.request("GET", "/public/one").status == 200);
    CHECK(client.request("GET", "/public/two").status == 200);
  }                                     // the client leaves: its event loop has no connection left
  CHECK(f.upstream.connections() == 1); // the second request took the pooled connection
  // Not before the limit (a bound that a slow host cannot break: it only closes later)...
  std::this_thread::sleep_for(200ms);
  CHECK(f.upstream.closed_idle() == 0);
  // ...and soon after it, with nothing coming to the sidecar.
  CHECK(f.upstream.closed_idle_reaches(1, 3000ms));
  // The next request opens a new connection.
  CHECK(f.get("/public/three").status == 200);
  CHECK(f.upstream.connections() == 2);
}

TEST_CASE_METHOD(proxy_fixture, "a pooled connection the upstream closed is replaced unseen",
                 "[upstream][pool]") {
  test::http_client client(gate.port());
  for (int round = 0; round < 5; ++round) {
    // The upstream answers keep-alive, then closes the connection while it sits in the pool.
    CHECK(client.request("GET", "/public/drop-after").status == 200);
    std::this_thread::sleep_for(150ms);
    CHECK(client.request("GET", "/public/next").status == 200);
  }
  CHECK(upstream.connections() >= 5);

  // A request that cannot be sent twice only goes out on a connection checked first.
  const std::string body(10'000, 'p');
  for (int round = 0; round < 3; ++round) {
    CHECK(client.request("GET", "/public/drop-after").status == 200);
    std::this_thread::sleep_for(150ms);
    CHECK(client.request("POST", "/public/next", {}, body).status == 200);
    CHECK(upstream.last().body_bytes == body.size());
  }
}

TEST_CASE_METHOD(proxy_fixture,
                 "a pooled connection is checked before every reuse: what arrived after its "
                 "answer is never another client's answer",
                 "[upstream][pool]") {
  test::http_client client(gate.port());
  // The echo names the target it answers.
  const auto answers = [](const test::http_response& r, std::string_view target) {
    return r.status == 200 && r.body.find("LATE-BODY") == std::string::npos &&
           r.json().as_object().at("target").as_string() == target;
  };
  SECTION("a 408 the upstream leaves on the idle connection before closing it") {
    CHECK(client.request("GET", "/public/timeout-after").status == 200);
    std::this_thread::sleep_for(300ms);
    CHECK(answers(client.request("GET", "/public/next"), "/public/next"));
  }
  SECTION("a late answer on a connection the upstream keeps open, again and again") {
    for (int round = 0; round < 3; ++round) {
      INFO("round " << round);
      CHECK(answers(client.request("GET", "/public/late-after?ms=50"), "/public/late-after?ms=50"));
      std::this_thread::sleep_for(300ms);
      // Another client, well within a second.
      CHECK(answers(test::request(gate.port(), "GET", "/public/next"), "/public/next"));
      CHECK(answers(test::request(gate.port(), "GET", "/public/after"), "/public/after"));
    }
  }
  SECTION("a 204 that announces a body: its connection is not reused") {
    CHECK(client.request("GET", "/public/no-content-late?ms=300").status == 204);
    // At once: the late bytes are still to come, so no check could see them yet.
    CHECK(answers(test::request(gate.port(), "GET", "/public/next"), "/public/next"));
    std::this_thread::sleep_for(400ms);
    CHECK(answers(test::request(gate.port(), "GET", "/public/after"), "/public/after"));
  }
}

namespace {
std::size_t seen_count(const test::test_upstream& u, std::string_view method,
                       std::string_view target) {
  std::size_t n = 0;
  for (const auto& r : u.requests())
    n += r.method == method && r.target == target ? 1 : 0;
  return n;
}
} // namespace

TEST_CASE_METHOD(proxy_fixture,
                 "bytes an upstream sends right behind an answer are never the answer of a "
                 "request that follows at once",
                 "[upstream][pool]") {
  test::raw_connection client(gate.port());
  // The stray 408 comes right behind the download's last bytes, and the pipelined request wants
  // a connection in the same turn of the event loop: the 408 must end the connection, not
  // answer that request.
  client.send("GET /public/download?bytes=100000&stray=1 HTTP/1.1\r\nHost: x\r\n\r\n"
              "GET /public/next HTTP/1.1\r\nHost: x\r\n\r\n");
  const auto both = client.read_until("\"target\":\"/public/next\"");
  CHECK(test::status_of(both) == 200);
  CHECK(both.find("HTTP/1.1 408") == std::string::npos);
  CHECK(both.find("\"target\":\"/public/next\"") != std::string::npos);
}

TEST_CASE_METHOD(proxy_fixture,
                 "an answer the upstream sends before the request's body is all in goes to "
                 "that request, on a pooled connection too",
                 "[upstream][pool]") {
  test::raw_connection client(gate.port());
  // A pooled connection first (one client connection: one event loop, one pool).
  client.send("GET /public/status/204 HTTP/1.1\r\nHost: x\r\n\r\n");
  REQUIRE(test::status_of(client.read_until("\r\n\r\n")) == 204);
  // The answer comes while the proxy still waits for the client's body: the connection's idle
  // watch ends with it before anyone waits for an answer.
  const std::string body(100'000, 'b');
  client.send("POST /public/answer-first HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n" +
              body.substr(0, 1000));
  std::this_thread::sleep_for(300ms);
  client.send(body.substr(1000));
  const auto answer = client.read_until("answered first");
  CHECK(test::status_of(answer) == 200);
  CHECK(answer.ends_with("\r\n\r\nanswered first"));
  // The connection carries on: the next request gets its own answer.
  client.send("GET /public/after HTTP/1.1\r\nHost: x\r\n\r\n");
  CHECK(client.read_until("/public/after").find("\"target\":\"/public/after\"") !=
        std::string::npos);
  CHECK(upstream.connections() == 1);
  CHECK(seen_count(upstream, "POST", "/public/answer-first") == 1);
}

TEST_CASE_METHOD(proxy_fixture,
                 "an upstream that hangs up without an answer gets 502, and only "
                 "an idempotent request on a reused connection is sent again",
                 "[upstream][pool]") {
  test::http_client client(gate.port());
  SECTION("GET on a reused connection: sent once more, on a new connection") {
    REQUIRE(client.request("GET", "/public/warm").status == 200); // pools a connection
    const auto r = client.request("GET", "/public/hang-up");
    CHECK(r.status == 502);
    CHECK(r.message() == "upstream closed the connection");
    CHECK(seen_count(upstream, "GET", "/public/hang-up") == 2);
  }
  SECTION("PUT with its body in hand: sent once more, body and all") {
    REQUIRE(client.request("GET", "/public/warm").status == 200);
    const std::string body(3000, 'u');
    CHECK(client.request("PUT", "/public/hang-up", {}, body).status == 502);
    std::size_t whole = 0;
    for (const auto& seen : upstream.requests())
      whole += seen.method == "PUT" && seen.body == body ? 1 : 0;
    CHECK(whole == 2);
  }
  SECTION("GET on a new connection: not sent again") {
    const auto r = client.request("GET", "/public/hang-up");
    CHECK(r.status == 502);
    CHECK(seen_count(upstream, "GET", "/public/hang-up") == 1);
  }
  SECTION("POST: never sent again") {
    REQUIRE(client.request("GET", "/public/warm").status == 200);
    const auto r = client.request("POST", "/public/hang-up", {}, "{}");
    CHECK(r.status == 502);
    CHECK(seen_count(upstream, "POST", "/public/hang-up") == 1);
  }
  // The sidecar keeps serving.
  CHECK(test::request(gate.port(), "GET", "/public/after").status == 200);
}
