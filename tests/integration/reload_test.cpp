// Live reload (README "Live reload"): POST /reload on the admin listener re-reads the
// configuration; routes, default_route, trusted_proxies, limits and log_level apply to the next
// request, a configuration that fails to load changes nothing, settings that need a restart are
// named, and requests in flight finish. The signal (SIGHUP) is tested on the real binary in
// tests/e2e/reload_test.cpp.
#include "tests/integration/proxy_fixture.hpp"

#include <catch2/catch.hpp>

#include <future>
#include <string>
#include <thread>

using namespace tokengate;
using namespace std::chrono_literals;
using test::proxy_fixture;

namespace {

test::http_response reload(const proxy_fixture& f) {
  return test::request(f.gate.admin_port(), "POST", "/reload");
}

std::vector<std::string> names(const boost::json::value& v) {
  std::vector<std::string> out;
  for (const auto& n : v.as_array())
    out.emplace_back(n.as_string());
  return out;
}

/// The example routes plus /admin, which takes UserRead.
proxy::config with_admin_route() {
  auto c = test::example_routes();
  tokenapi::permission_set user_read;
  user_read.insert(tokenapi::permission::UserRead);
  c.routes.insert(c.routes.begin(), proxy::route{"/admin", {}, false, user_read});
  return c;
}

} // namespace

TEST_CASE("a route added by a reload is enforced on the next request", "[reload]") {
  proxy_fixture f;
  const auto plain = f.gate.create_token("plain", {});
  REQUIRE(f.get_with(plain.value, "/admin/users").status == 200); // the default route

  f.gate.reload_with(with_admin_route());
  const auto r = reload(f);
  INFO(r.body);
  REQUIRE(r.status == 200);
  const auto doc = r.json();
  const auto& body = doc.as_object();
  CHECK(body.at("result") == "applied");
  CHECK(names(body.at("changed")) == std::vector<std::string>{"routes"});
  CHECK(names(body.at("restartRequired")).empty());

  const auto denied = f.get_with(plain.value, "/admin/users");
  CHECK(denied.status == 403);
  CHECK(f.get_with(plain.value, "/other").status == 200);
  CHECK(f.gate.log_text().find(R"("msg":"configuration reloaded","changed":["routes"])") !=
        std::string::npos);
}

TEST_CASE("a configuration that fails to load changes nothing and says why", "[reload]") {
  proxy_fixture f;
  const auto plain = f.gate.create_token("plain", {});
  f.gate.reload_with(with_admin_route());
  REQUIRE(reload(f).status == 200);

  f.gate.fail_reload_with("config file /etc/tokengate.json: routes[0]: unknown key 'prefx'");
  const auto r = reload(f);
  CHECK(r.status == 422);
  CHECK(r.json().as_object().at("result") == "failed");
  CHECK(r.message() == "config file /etc/tokengate.json: routes[0]: unknown key 'prefx'");
  // The routes of the last good configuration stay.
  CHECK(f.get_with(plain.value, "/admin/users").status == 403);

  const auto metrics = test::request(f.gate.admin_port(), "GET", "/metrics").body;
  CHECK(metrics.find("tokengate_config_reloads_total{result=\"success\"} 1") != std::string::npos);
  CHECK(metrics.find("tokengate_config_reloads_total{result=\"failure\"} 1") != std::string::npos);
  CHECK(f.gate.log_text().find(R"("level":"error","msg":"configuration reload failed; )"
                               R"(nothing changed","error":"config file /etc/tokengate.json)") !=
        std::string::npos);
}

TEST_CASE("settings that need a restart are named and not applied", "[reload]") {
  proxy_fixture f;
  auto next = test::example_routes();
  next.threads = 7;
  next.database_url = "postgresql://tokengate:secret@db/tokens";
  next.limits.max_header_bytes = 8192;
  f.gate.reload_with(next);
  const auto r = reload(f);
  INFO(r.body);
  REQUIRE(r.status == 200);
  const auto doc = r.json();
  const auto& body = doc.as_object();
  CHECK(names(body.at("changed")) == std::vector<std::string>{"limits"});
  CHECK(names(body.at("restartRequired")) == std::vector<std::string>{"threads", "database_url"});
  // The value of a setting is never echoed: the database URL may hold a password.
  CHECK(r.body.find("secret") == std::string::npos);
  CHECK(f.gate.log_text().find("secret") == std::string::npos);
}

TEST_CASE("reloaded limits apply to the next request", "[reload]") {
  proxy_fixture f;
  const auto plain = f.gate.create_token("plain", {});
  const test::header_list big{{"X-Big", std::string(6000, 'a')}};
  REQUIRE(f.get_with(plain.value, "/x", big).status == 200);

  auto next = test::example_routes();
  next.limits.max_header_bytes = 4096;
  f.gate.reload_with(next);
  REQUIRE(reload(f).status == 200);
  CHECK(f.get_with(plain.value, "/x", big).status == 431);
  CHECK(f.get_with(plain.value, "/x").status == 200);
}

TEST_CASE("a reloaded upstream_idle_timeout_ms applies to the connections already pooled, on "
          "every event loop",
          "[reload][upstream][pool]") {
  proxy_fixture f; // 60 s: the connections would stay pooled through the test
  // Two clients on keep-alive connections of their own: the second goes to the loop that holds
  // fewer (README "Event loops"), so each loop pools an upstream connection.
  test::http_client first(f.gate.port());
  REQUIRE(first.request("GET", "/public/x").status == 200);
  test::http_client second(f.gate.port());
  REQUIRE(second.request("GET", "/public/y").status == 200);
  const auto pooled = f.upstream.connections();
  CHECK(pooled == 2);
  CHECK(f.upstream.closed_idle() == 0);
  // A loop left without connections sleeps until its pool's oldest connection reaches the idle
  // limit (after its next sweep, within 50 ms): the reload must wake it. The admin loop wakes
  // every 50 ms while it serves the reload.
  std::this_thread::sleep_for(200ms);

  auto next = test::example_routes();
  next.limits.upstream_idle_timeout = 300ms;
  f.gate.reload_with(next);
  REQUIRE(reload(f).status == 200);
  CHECK(f.upstream.closed_idle_reaches(pooled, 3000ms));
  CHECK(f.upstream.closed_idle() == pooled);
}

TEST_CASE("a reloaded trusted_proxies list decides the next request's client address", "[reload]") {
  proxy_fixture f;
  const auto office = f.gate.create_token("office", {}, {"203.0.113.0/24"});
  const test::header_list from_office{{"X-Forwarded-For", "203.0.113.9"}};
  REQUIRE(f.get_with(office.value, "/x", from_office).status == 403); // 127.0.0.1 decides

  auto next = test::example_routes();
  next.trusted_proxies = {*tokenapi::cidr_block::parse("127.0.0.1/32")};
  f.gate.reload_with(next);
  REQUIRE(reload(f).status == 200);
  CHECK(f.get_with(office.value, "/x", from_office).status == 200);
}

TEST_CASE("a reloaded log_level turns the access log off", "[reload]") {
  proxy_fixture f;
  const auto plain = f.gate.create_token("plain", {});
  auto next = test::example_routes();
  next.level = proxy::log_level::warn;
  f.gate.reload_with(next);
  REQUIRE(reload(f).status == 200);
  REQUIRE(f.get_with(plain.value, "/after-reload").status == 200);
  f.gate.stop();
  CHECK(f.gate.log_text().find("/after-reload") == std::string::npos);
}

TEST_CASE("a request in flight finishes with the settings it started with", "[reload]") {
  proxy_fixture f;
  const auto plain = f.gate.create_token("plain", {});
  test::http_client client(f.gate.port());
  auto slow = std::async(std::launch::async, [&] {
    return client.request("GET", "/admin/slow?ms=800", {{"X-API-Key", plain.value}});
  });
  // The upstream holds the request; meanwhile a reload denies its path.
  while (f.upstream.requests().empty())
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  f.gate.reload_with(with_admin_route());
  REQUIRE(reload(f).status == 200);
  const auto answered = slow.get();
  CHECK(answered.status == 200);
  // The same keep-alive connection's next request is decided by the new routes.
  CHECK(client.request("GET", "/admin/users", {{"X-API-Key", plain.value}}).status == 403);
}

TEST_CASE("/reload takes POST only", "[reload]") {
  proxy_fixture f;
  const auto r = test::request(f.gate.admin_port(), "GET", "/reload");
  CHECK(r.status == 405);
  CHECK(r.header("Allow") == "POST");
  CHECK(r.message() == "method not allowed");
}

TEST_CASE("an idle keep-alive connection's next request is decided by the reloaded routes",
          "[reload]") {
  proxy_fixture f;
  const auto plain = f.gate.create_token("plain", {});
  test::http_client client(f.gate.port());
  REQUIRE(client.request("GET", "/admin/users", {{"X-API-Key", plain.value}}).status == 200);
  // The connection now waits for its next head while the routes change.
  f.gate.reload_with(with_admin_route());
  REQUIRE(reload(f).status == 200);
  CHECK(client.request("GET", "/admin/users", {{"X-API-Key", plain.value}}).status == 403);
}

TEST_CASE("a reload asked for by a web page (with Origin) is refused", "[reload]") {
  proxy_fixture f;
  f.gate.reload_with(with_admin_route());
  const auto r =
      test::request(f.gate.admin_port(), "POST", "/reload", {{"Origin", "https://evil.example"}});
  CHECK(r.status == 403);
  CHECK(r.message() == "cross-origin requests are refused on the admin listener");
  const auto plain = f.gate.create_token("plain", {});
  CHECK(f.get_with(plain.value, "/admin/users").status == 200); // nothing reloaded
}
