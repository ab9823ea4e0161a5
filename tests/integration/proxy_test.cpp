// The auth proxy against a real upstream on loopback (README "The proxy").
#include "tests/integration/proxy_fixture.hpp"

#include "tests/support/occurrences.hpp"

#include <catch2/catch.hpp>

#include <atomic>
#include <sstream>
#include <thread>
#include <vector>

using namespace tokengate;
using test::proxy_fixture;

TEST_CASE_METHOD(proxy_fixture,
                 "keys are checked against the route before the upstream sees a byte", "[proxy]") {
  auto reader = gate.create_token("reader", {"AlertRead"});
  auto writer = gate.create_token("writer", {"AlertModify"});
  auto fenced = gate.create_token("fenced", {"AlertRead"}, {"10.0.0.0/8"});

  auto none = get("/alerts/7");
  CHECK(none.status == 401);
  CHECK(none.header("Content-Type") == "application/json");
  CHECK(none.message() == "missing X-API-Key header");
  CHECK(get_with("tg_garbage", "/alerts/7").status == 401);
  auto wrong = get_with(reader.value, "/alerts/7", {});
  CHECK(wrong.status == 200);
  auto missing = test::request(gate.port(), "DELETE", "/alerts/7", {{"X-API-Key", reader.value}});
  CHECK(missing.status == 403);
  CHECK_THAT(missing.message(), Catch::Contains("AlertModify"));
  CHECK(get_with(fenced.value, "/alerts/7").status == 403);
  CHECK(test::request(gate.port(), "DELETE", "/alerts/7", {{"X-API-Key", writer.value}}).status ==
        200);
  // Only the two allowed requests reached the upstream.
  CHECK(upstream.requests().size() == 2);
}

TEST_CASE_METHOD(proxy_fixture,
                 "the upstream sees the token's identity, never the key or forgeries",
                 "[proxy][headers]") {
  auto t = gate.create_token("reporting job", {"AlertRead", "RuleRead"});
  auto r = get_with(t.value, "/alerts?since=1",
                    {{"X-Token-Id", "forged"},
                     {"x-token-name", "forged"},
                     {"X-Token-Permissions", "UserModify"},
                     {"X-Forwarded-For", "203.0.113.9"},
                     {"X-Forwarded-Proto", "https"},
                     {"Connection", "keep-alive, X-Secret-Hop"},
                     {"X-Secret-Hop", "hop"},
                     {"Keep-Alive", "timeout=5"},
                     {"Upgrade", "h2c"},
                     {"HTTP2-Settings", "AAMAAABkAAQAAP__"},
                     {"Proxy-Authorization", "Basic Zm9vOmJhcg=="},
                     {"X-Custom", "kept"}});
  REQUIRE(r.status == 200);
  const auto seen = upstream.last();
  CHECK(seen.target == "/alerts?since=1");
  CHECK(seen.count("X-API-Key") == 0);
  CHECK(seen.count("X-Token-Id") == 1);
  CHECK(seen.header("X-Token-Id") == t.id);
  CHECK(seen.header("X-Token-Name") == "reporting job");
  CHECK(seen.header("X-Token-Permissions") == "AlertRead,RuleRead");
  CHECK(seen.header("X-Forwarded-For") == "127.0.0.1"); // an untrusted client's list is dropped
  CHECK(seen.header("X-Forwarded-Proto") == "http");    // the peer is not a trusted proxy
  CHECK(seen.header("X-Forwarded-Host") == "127.0.0.1");
  for (auto hop : {"Connection", "X-Secret-Hop", "Keep-Alive", "Upgrade", "HTTP2-Settings",
                   "Proxy-Authorization"}) {
    INFO(hop);
    CHECK(seen.count(hop) == 0);
  }
  CHECK(seen.header("X-Custom") == "kept");
  // The answer carries the upstream's own headers back.
  CHECK(r.header("X-Upstream") == "test");

  // On an open route no identity is added, and forged identity headers are still removed.
  auto open = get("/public/page", {{"X-Token-Id", "forged"}});
  REQUIRE(open.status == 200);
  CHECK(upstream.last().count("X-Token-Id") == 0);
}

TEST_CASE_METHOD(proxy_fixture, "no path reaches a protected route through an open one",
                 "[proxy][paths]") {
  auto any = gate.create_token("any", {});
  const char* sneaky[] = {
      "/public/../alerts",        "/public/%2e%2e/alerts",
      "/public/%2E%2e/alerts/7",  "/public/.%2e/alerts",
      "/public/./../alerts",      "//public/../alerts",
      "/public/x/../../alerts/1", "/public/..",
  };
  for (auto target : sneaky) {
    INFO(target);
    upstream.clear();
    // Without a key the normalised path is protected: refused before the upstream.
    auto raw = test::raw_connection(gate.port());
    raw.send(std::string("GET ") + target + " HTTP/1.1\r\nHost: x\r\n\r\n");
    const auto answer = raw.read_until("}");
    if (std::string_view(target) == "/public/..") {
      CHECK(test::status_of(answer) == 401); // "/" is the default route: a key is needed
    } else {
      CHECK(test::status_of(answer) == 401);
    }
    CHECK(upstream.requests().empty());
  }
  // With a key that lacks AlertRead: 403, never the upstream.
  auto raw = test::raw_connection(gate.port());
  raw.send("GET /public/%2e%2e/alerts HTTP/1.1\r\nHost: x\r\nX-API-Key: " + any.value + "\r\n\r\n");
  CHECK(test::status_of(raw.read_until("}")) == 403);
  CHECK(upstream.requests().empty());

  // Encoded separators and backslashes are refused outright.
  for (auto target :
       {"/public/..%2falerts", "/public/..%5Calerts", "/public/%00", "/public\\..\\alerts"}) {
    INFO(target);
    test::raw_connection c(gate.port());
    c.send(std::string("GET ") + target + " HTTP/1.1\r\nHost: x\r\n\r\n");
    CHECK(test::status_of(c.read_until("}")) == 400);
  }
  CHECK(upstream.requests().empty());

  // What goes upstream is exactly the normalised path, the query untouched.
  auto reader = gate.create_token("reader", {"AlertRead"});
  test::raw_connection ok(gate.port());
  ok.send("GET /public/../alerts//7/./x/..?q=%2F..%2F HTTP/1.1\r\nHost: x\r\nX-API-Key: " +
          reader.value + "\r\n\r\n");
  CHECK(test::status_of(ok.read_until("}")) == 200);
  CHECK(upstream.last().target == "/alerts/7/?q=%2F..%2F");
}

TEST_CASE("routes: methods, open prefixes and a denying default", "[proxy][routes]") {
  auto settings = test::example_routes();
  settings.default_route.reset();
  proxy_fixture f(settings);
  auto writer = f.gate.create_token("writer", {"AlertModify"});
  CHECK(f.get("/public").status == 200);
  CHECK(f.get("/public/a/b").status == 200);
  CHECK(f.get("/publicity").status == 403); // no route and no default: deny
  CHECK(f.get_with(writer.value, "/elsewhere").status == 403);
  CHECK_THAT(f.get_with(writer.value, "/elsewhere").message(), Catch::Contains("no route"));
  // GET needs AlertRead (first route); POST falls through to the AlertModify route.
  CHECK(f.get_with(writer.value, "/alerts").status == 403);
  CHECK(
      test::request(f.gate.port(), "POST", "/alerts", {{"X-API-Key", writer.value}}, "{}").status ==
      200);
  // /api-tokens is never proxied.
  CHECK(test::request(f.gate.port(), "GET", "/api-tokens", {{"X-API-Key", writer.value}}).status ==
        403);
  CHECK(f.upstream.requests().size() == 3);
}

TEST_CASE_METHOD(proxy_fixture, "token changes through the API apply to the very next request",
                 "[proxy]") {
  auto t = gate.create_token("t", {"AlertRead"});
  test::http_client client(gate.port());
  const test::header_list with_key{{"X-API-Key", t.value}};
  CHECK(client.request("GET", "/alerts", with_key).status == 200);
  auto admin = test::header_list{{"X-API-Key", gate.admin_key()}};
  REQUIRE(test::request(gate.port(), "POST", "/api-tokens/" + t.id, admin,
                        R"({"name":"t","permissions":["RuleRead"]})")
              .status == 200);
  CHECK(client.request("GET", "/alerts", with_key).status == 403);
  REQUIRE(
      test::request(gate.port(), "POST", "/api-tokens/" + t.id, admin,
                    R"({"name":"t","permissions":["AlertRead"],"allowedCIDRBlocks":["10.0.0.1"]})")
          .status == 200);
  CHECK(client.request("GET", "/alerts", with_key).status == 403);
  auto rotated = test::request(gate.port(), "POST", "/api-tokens/" + t.id + "/rotate", admin);
  REQUIRE(rotated.status == 200);
  CHECK(client.request("GET", "/alerts", with_key).status == 401);
  REQUIRE(test::request(gate.port(), "DELETE", "/api-tokens/" + t.id, admin).status == 204);
  const auto new_value = std::string(rotated.json().at("value").as_string());
  CHECK(client.request("GET", "/alerts", {{"X-API-Key", new_value}}).status == 401);
}

TEST_CASE("behind a trusted proxy the client is the right-most untrusted address", "[proxy][xff]") {
  auto settings = test::example_routes();
  settings.trusted_proxies = {*tokenapi::cidr_block::parse("127.0.0.0/8"),
                              *tokenapi::cidr_block::parse("10.1.0.0/16")};
  proxy_fixture f(settings);
  auto fenced = f.gate.create_token("fenced", {"AlertRead"}, {"192.0.2.0/24"});
  // Peer 127.0.0.1 is trusted; 10.1.2.3 is trusted too; 192.0.2.7 is the client.
  auto r = f.get_with(
      fenced.value, "/alerts",
      {{"X-Forwarded-For", "198.51.100.1, 192.0.2.7, 10.1.2.3"}, {"X-Forwarded-Proto", "https"}});
  CHECK(r.status == 200);
  CHECK(f.upstream.last().header("X-Forwarded-For") ==
        "198.51.100.1, 192.0.2.7, 10.1.2.3, 127.0.0.1");
  CHECK(f.upstream.last().header("X-Forwarded-Proto") == "https");
  CHECK(f.upstream.last().header("X-Real-IP") == "192.0.2.7");
  // A client cannot hide behind an address it writes itself further left.
  CHECK(f.get_with(fenced.value, "/alerts", {{"X-Forwarded-For", "192.0.2.7, 198.51.100.1"}})
            .status == 403);
  CHECK(f.get_with(fenced.value, "/alerts").status == 403);
}

TEST_CASE_METHOD(proxy_fixture, "bodies relay whole: length, chunked, HEAD, 204, 304, 103",
                 "[proxy][relay]") {
  auto t = gate.create_token("t", {"AlertRead", "AlertModify"});
  const test::header_list key{{"X-API-Key", t.value}};
  test::http_client client(gate.port());

  const std::string body(200'000, 'x');
  auto posted = client.request("POST", "/alerts/upload", key, body);
  REQUIRE(posted.status == 200);
  CHECK(upstream.last().body_bytes == body.size());
  CHECK(upstream.last().body_hash == test::fnv1a(body));

  auto length = client.request("GET", "/download?bytes=300000", key);
  REQUIRE(length.status == 200);
  CHECK(length.header("Content-Length") == "300000");
  REQUIRE(length.body.size() == 300000);
  CHECK(length.body[299999] == test::pattern_byte(299999));

  auto chunked = client.request("GET", "/download?bytes=300001&chunked=1", key);
  REQUIRE(chunked.status == 200);
  CHECK(chunked.header("Transfer-Encoding") == "chunked");
  CHECK(chunked.body.size() == 300001);

  auto head = client.request("HEAD", "/alerts", key);
  CHECK(head.status == 200);
  CHECK(head.body.empty());
  CHECK(head.header("Content-Length").has_value());

  CHECK(client.request("GET", "/status/204", key).status == 204);
  CHECK(client.request("GET", "/status/304", key).status == 304);
  CHECK(client.request("GET", "/status/404", key).status == 404);
  CHECK(client.request("GET", "/status/503", key).status == 503);

  // A body the upstream ends by closing reaches an HTTP/1.1 client re-framed as chunked.
  auto closing = client.request("GET", "/close", key);
  CHECK(closing.status == 200);
  CHECK(closing.header("Transfer-Encoding") == "chunked");
  CHECK(closing.json().at("target") == "/close");

  // Interim 103 answers are relayed before the final one.
  test::raw_connection raw(gate.port());
  raw.send("GET /early-hints HTTP/1.1\r\nHost: x\r\nX-API-Key: " + t.value + "\r\n\r\n");
  const auto both = raw.read_until("\"body_hash\"");
  CHECK(both.starts_with("HTTP/1.1 103 "));
  CHECK(both.find("HTTP/1.1 200 OK") != std::string::npos);

  // A chunked upload reaches the upstream as the same bytes.
  test::raw_connection up(gate.port());
  up.send("POST /alerts HTTP/1.1\r\nHost: x\r\nX-API-Key: " + t.value +
          "\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n6\r\n "
          "world\r\n0\r\nX-Trailer: 1\r\n\r\n");
  CHECK(test::status_of(up.read_until("}")) == 200);
  CHECK(upstream.last().body == "hello world");
}

// A read that fills its buffer leaves bytes in the socket that no later edge-triggered event
// announces: the next read must look before it waits.
TEST_CASE_METHOD(proxy_fixture,
                 "pipelined requests that come in one burst larger than a read are all served, "
                 "with nothing more sent",
                 "[proxy][relay]") {
  auto t = gate.create_token("t", {"AlertRead", "AlertModify"});
  std::string burst;
  for (int i = 1; i <= 3; ++i)
    burst += "POST /alerts/" + std::to_string(i) + " HTTP/1.1\r\nHost: x\r\nX-API-Key: " + t.value +
             "\r\nContent-Length: 40000\r\n\r\n" + std::string(40000, 'a' + i);
  burst += "GET /alerts/last HTTP/1.1\r\nHost: x\r\nX-API-Key: " + t.value + "\r\n\r\n";
  test::raw_connection raw(gate.port());
  REQUIRE(raw.send(burst));
  const auto answers = raw.read_until("/alerts/last");
  CHECK(test::occurrences(answers, "HTTP/1.1 200 OK") == 4);
  CHECK(upstream.last().target == "/alerts/last");
}

// A read that also takes the peer's close (its FIN came right behind the last bytes) leaves
// no later event to announce the close: it must not count as a read that emptied the socket.
TEST_CASE_METHOD(proxy_fixture,
                 "a close or a reset that comes right behind the last bytes is seen at once: a "
                 "body the upstream ends by closing, a client that half-closes after its "
                 "request, an upstream that resets in the middle of an answer",
                 "[proxy][relay]") {
  auto t = gate.create_token("t", {"AlertRead"});
  test::http_client client(gate.port());
  for (int i = 0; i < 20; ++i) {
    // The upstream writes its answer and closes at once; the body ends with the close.
    auto closing = client.request("GET", "/close", {{"X-API-Key", t.value}});
    REQUIRE(closing.status == 200);
    CHECK(closing.json().at("target") == "/close");
  }
  for (int i = 0; i < 20; ++i) {
    test::raw_connection raw(gate.port());
    raw.send("GET /alerts/1 HTTP/1.1\r\nHost: x\r\nX-API-Key: " + t.value + "\r\n\r\n");
    raw.shutdown_send();
    CHECK(test::status_of(raw.read_until("\"body_hash\"")) == 200);
    // Well before idle_timeout_ms (60 s): the client's close was seen, not waited out.
    CHECK(raw.closed_within(std::chrono::milliseconds(5000)));
  }
  // A reset right behind the last bytes: the kernel's count of what is left does not count it,
  // so only epoll's report tells it (see proxy/detail/ready_read.hpp).
  for (int i = 0; i < 20; ++i) {
    test::raw_connection raw(gate.port());
    raw.send("GET /reset-after-part HTTP/1.1\r\nHost: x\r\nX-API-Key: " + t.value + "\r\n\r\n");
    CHECK(test::status_of(raw.read_until("0123456789")) == 200);
    // Well before upstream_timeout_ms (30 s): the cut answer ends with the connection.
    CHECK(raw.closed_within(std::chrono::milliseconds(5000)));
  }
}

TEST_CASE_METHOD(proxy_fixture, "Expect: 100-continue is answered on the headers alone",
                 "[proxy][expect]") {
  auto t = gate.create_token("t", {"AlertModify"});
  // Refused: the answer comes without the body ever being sent, and the connection closes.
  test::raw_connection denied(gate.port());
  denied.send("POST /alerts HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n"
              "Expect: 100-continue\r\n\r\n");
  const auto refusal = denied.read_until("}");
  CHECK(test::status_of(refusal) == 401);
  CHECK(refusal.find("Connection: close") != std::string::npos);
  CHECK(denied.closed_within(std::chrono::seconds(3)));

  // Allowed: 100 Continue, then the body, then the upstream's answer.
  test::raw_connection allowed(gate.port());
  allowed.send("POST /alerts HTTP/1.1\r\nHost: x\r\nX-API-Key: " + t.value +
               "\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n");
  CHECK(allowed.read_until("\r\n\r\n").starts_with("HTTP/1.1 100 Continue\r\n\r\n"));
  allowed.send("hello");
  CHECK(test::status_of(allowed.read_until("}")) == 200);
  CHECK(upstream.last().body == "hello");
  CHECK(upstream.last().count("Expect") == 0);
}

TEST_CASE_METHOD(proxy_fixture, "many connections and long keep-alive all succeed",
                 "[proxy][load]") {
  auto t = gate.create_token("t", {"AlertRead"});
  const test::header_list key{{"X-API-Key", t.value}};
  std::atomic<int> ok{0};
  std::vector<std::thread> clients;
  for (int c = 0; c < 200; ++c)
    clients.emplace_back([&] {
      test::http_client client(gate.port());
      for (int i = 0; i < 20; ++i)
        if (client.request("GET", "/alerts/" + std::to_string(i), key).status == 200)
          ++ok;
    });
  for (auto& c : clients)
    c.join();
  CHECK(ok == 200 * 20);

  // Upstream connections are pooled, not opened per request. How many the burst opened depends
  // on how the 200 clients overlapped (the pool keeps 64 idle a loop); far fewer than requests.
  CHECK(upstream.connections() < 200 * 20 / 4);

  const auto before = upstream.connections();
  test::http_client one(gate.port());
  int on_one = 0;
  for (int i = 0; i < 200; ++i)
    on_one += one.request("GET", "/alerts", key).status == 200 ? 1 : 0;
  CHECK(on_one == 200);
  // One request after another: each takes a pooled connection back.
  CHECK(upstream.connections() - before <= 2);
}

namespace {

/// The access-log lines about `path`, once `count` of them are there (the line is written just
/// after the answer, so the test may read the log a moment before it).
std::vector<boost::json::object> access_lines(const test::sidecar& gate, std::string_view path,
                                              std::size_t count) {
  std::vector<boost::json::object> lines;
  for (int tries = 0; tries < 200 && lines.size() < count; ++tries) {
    if (tries > 0)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    lines.clear();
    std::istringstream text(gate.log_text());
    for (std::string line; std::getline(text, line);) {
      auto value = boost::json::parse(line);
      const auto& o = value.as_object();
      if (o.contains("path") && o.at("path").as_string() == path)
        lines.push_back(o);
    }
  }
  return lines;
}

} // namespace

TEST_CASE_METHOD(proxy_fixture, "each proxied request is one access-log line, never with a key",
                 "[proxy][log]") {
  auto t = gate.create_token("reader", {"AlertRead"});
  REQUIRE(get_with(t.value, "/alerts/./7/../8?q=secret-query").status == 200);
  REQUIRE(get_with("tg_wrong", "/alerts/8").status == 401);
  REQUIRE(test::request(gate.port(), "POST", "/public/upload", {}, std::string(1000, 'b')).status ==
          200);

  auto alerts = access_lines(gate, "/alerts/8", 2);
  REQUIRE(alerts.size() == 2);
  // Each line is written once its answer is out: another connection's may come first.
  if (alerts[0].at("status").to_number<int>() != 200)
    std::swap(alerts[0], alerts[1]);
  const auto& allowed = alerts[0];
  CHECK(allowed.at("method").as_string() == "GET");
  CHECK(allowed.at("status").to_number<int>() == 200);
  CHECK(allowed.at("token_id").as_string() == t.id);
  CHECK(allowed.at("client").as_string() == "127.0.0.1");
  CHECK(allowed.at("upstream_ms").to_number<double>() >= 0);
  CHECK(allowed.at("bytes_out").to_number<std::uint64_t>() > 0);
  const auto& refused = alerts[1];
  CHECK(refused.at("status").to_number<int>() == 401);
  CHECK_FALSE(refused.contains("upstream_ms")); // it never went upstream

  const auto uploads = access_lines(gate, "/public/upload", 1);
  REQUIRE(uploads.size() == 1);
  CHECK(uploads[0].at("method").as_string() == "POST");
  CHECK(uploads[0].at("bytes_in").to_number<std::uint64_t>() == 1000);

  const auto log = gate.log_text();
  CHECK(log.find(t.value) == std::string::npos);
  CHECK(log.find("tg_wrong") == std::string::npos);
  CHECK(log.find("secret-query") == std::string::npos); // paths are logged without the query
}

// The client's address is the one accept() gives: on a listener for every address ("::"), an
// IPv4 client is its IPv4 address (not ::ffff:127.0.0.1) for allowedCIDRBlocks and the access
// log, and an IPv6 client its IPv6 address.
TEST_CASE("a listener on :: sees an IPv4 client as IPv4 and an IPv6 client as IPv6", "[proxy]") {
  test::test_upstream upstream;
  auto settings = test::example_routes();
  settings.listen.host = "::";
  test::sidecar gate(upstream.port(), settings);
  auto v4 = gate.create_token("v4", {"AlertRead"}, {"127.0.0.1/32"});
  auto v6 = gate.create_token("v6", {"AlertRead"}, {"::1/128"});
  const auto status_from = [&](std::string_view address, const std::string& key) {
    test::http_client client(gate.port(), address);
    return client.request("GET", "/alerts/7", {{"X-API-Key", key}}).status;
  };
  CHECK(status_from("127.0.0.1", v4.value) == 200);
  CHECK(status_from("::1", v4.value) == 403);
  CHECK(status_from("::1", v6.value) == 200);
  CHECK(status_from("127.0.0.1", v6.value) == 403);
  const auto log = gate.log_text();
  CHECK_THAT(log, Catch::Contains(R"("client":"127.0.0.1")"));
  CHECK_THAT(log, Catch::Contains(R"("client":"::1")"));
  CHECK_THAT(log, !Catch::Contains("::ffff:"));
}
