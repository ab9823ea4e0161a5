// Report-only routes and expiry warnings (README "Key lifecycle"), through the real sidecar and
// upstream: a route with "enforce": false lets through what it would refuse, logs why and counts
// it; a key close to its expiry is told so on every answer, logged once a day, and counted.
#include "tests/integration/lifecycle_support.hpp"
#include "tokenapi/rfc3339.hpp"
#include "tokenapi/token_value.hpp"

#include <sstream>

using namespace tokengate;
using namespace std::chrono_literals;
using test::eventually;
using test::lifecycle_fixture;
using test::request;

namespace {

proxy::config with_report_only_route() {
  auto c = test::example_routes();
  tokenapi::permission_set modify;
  modify.insert(tokenapi::permission::AlertModify);
  proxy::route shadow{"/shadow", {}, false, modify};
  shadow.enforce = false;
  c.routes.insert(c.routes.begin(), shadow);
  return c;
}

struct report_only_fixture : lifecycle_fixture {
  report_only_fixture() : lifecycle_fixture(with_report_only_route()) {}

  /// The access-log line of the `n`th request (from 1) to `path`, once it is written.
  boost::json::object access_line(std::string_view path, std::size_t n) {
    std::vector<boost::json::object> lines;
    eventually([&] {
      lines.clear();
      std::istringstream text(gate.log_text());
      for (std::string line; std::getline(text, line);) {
        auto v = boost::json::parse(line);
        if (v.as_object().contains("path") && v.at("path").as_string() == path)
          lines.push_back(v.as_object());
      }
      return lines.size() >= n;
    });
    REQUIRE(lines.size() >= n);
    return lines[n - 1];
  }
  std::string metrics() { return test::request(gate.admin_port(), "GET", "/metrics").body; }
};

std::string in_days(int days) {
  return tokenapi::format_rfc3339(std::chrono::floor<std::chrono::seconds>(
      std::chrono::system_clock::now() + std::chrono::hours(24 * days)));
}

} // namespace

TEST_CASE_METHOD(report_only_fixture,
                 "a report-only route passes what it would refuse, and logs and counts why",
                 "[lifecycle][report-only]") {
  const auto reader = gate.create_token("reader", {"AlertRead"});
  auto r = get_with(reader.value, "/shadow/1");
  CHECK(r.status == 200);
  CHECK(upstream.last().target == "/shadow/1");
  CHECK_FALSE(upstream.last().header("X-Token-Id")); // no identity for a key it would refuse
  CHECK_FALSE(upstream.last().header("X-API-Key"));
  auto line = access_line("/shadow/1", 1);
  CHECK(line.at("would_deny") == "permission_denied");
  CHECK(line.at("token_id").as_string() == reader.id);
  CHECK(line.at("status") == 200);

  // A key from outside its allowedCIDRBlocks is passed and reported too.
  const auto elsewhere = create(R"({"name":"elsewhere","permissions":["AlertModify"],)"
                                R"("allowedCIDRBlocks":["10.0.0.0/8"]})");
  CHECK(get_with(elsewhere.value, "/shadow/2").status == 200);
  CHECK_FALSE(upstream.last().header("X-Token-Id"));
  CHECK(access_line("/shadow/2", 1).at("would_deny") == "address_denied");

  // What it allows goes through as on any route, with the identity, and no would_deny.
  const auto writer = gate.create_token("writer", {"AlertModify"});
  CHECK(get_with(writer.value, "/shadow/3").status == 200);
  CHECK(upstream.last().header("X-Token-Id") == writer.id);
  CHECK_FALSE(access_line("/shadow/3", 1).contains("would_deny"));

  // The enforcing routes beside it still refuse.
  CHECK(get("/alerts/1").status == 401);

  const auto text = metrics();
  CHECK_THAT(text, Catch::Contains(R"(tokengate_would_deny_total{reason="permission_denied"} 1)"));
  CHECK_THAT(text, Catch::Contains(R"(tokengate_would_deny_total{reason="address_denied"} 1)"));
}

TEST_CASE_METHOD(report_only_fixture,
                 "a report-only route still refuses a key that does not authenticate",
                 "[lifecycle][report-only]") {
  const auto before = upstream.requests().size();
  const auto unknown = tokenapi::generate_value();
  REQUIRE(unknown);
  const std::pair<std::optional<std::string>, std::string_view> refused[]{
      {std::nullopt, "missing X-API-Key header"},
      {std::string("not-a-key"), "malformed API key"},
      {*unknown, "invalid API key"},
  };
  for (const auto& [key, message] : refused) {
    INFO(message);
    auto r = key ? get_with(*key, "/shadow/1") : get("/shadow/1");
    CHECK(r.status == 401);
    CHECK(r.message() == message);
  }
  CHECK(upstream.requests().size() == before);
  CHECK_THAT(metrics(), !Catch::Contains("would_deny_total{reason=\"missing_key\"}"));
  CHECK_THAT(metrics(), Catch::Contains(R"(tokengate_would_deny_total{reason="rate_limited"} 0)"));
}

TEST_CASE_METHOD(report_only_fixture,
                 "a report-only route passes a rate-limited key with its identity",
                 "[lifecycle][report-only][rate]") {
  const auto t = create(R"({"name":"w","permissions":["AlertModify"],)"
                        R"("rateLimit":{"requests":1,"perSeconds":86400}})");
  CHECK(get_with(t.value, "/shadow/1").status == 200);
  auto over = get_with(t.value, "/shadow/2");
  CHECK(over.status == 200);
  CHECK_THAT(over.header("RateLimit").value_or(""), Catch::StartsWith(R"("default";r=0;t=)"));
  CHECK_FALSE(over.header("Retry-After"));
  CHECK(upstream.last().header("X-Token-Id") == t.id);
  CHECK(access_line("/shadow/2", 1).at("would_deny") == "rate_limited");
  CHECK_FALSE(access_line("/shadow/1", 1).contains("would_deny"));
  CHECK(get_with(t.value, "/alerts/1").status == 403); // refused before the limit is counted
  CHECK(request(gate.port(), "DELETE", "/alerts/1", {{"X-API-Key", t.value}}).status == 429);
}

TEST_CASE_METHOD(report_only_fixture,
                 "a key within expiry_warning of its expiry is told so on every answer",
                 "[lifecycle][expiry]") {
  const auto soon_at = in_days(2);
  const auto soon =
      create(R"({"name":"soon","permissions":["AlertRead"],"expiresAt":")" + soon_at + R"("})");
  const auto later = create(R"({"name":"later","permissions":["AlertRead"],"expiresAt":")" +
                            in_days(30) + R"("})");
  const auto never = gate.create_token("never", {"AlertRead"});

  CHECK(get_with(soon.value, "/alerts/1").header("X-Token-Expires") == soon_at);
  CHECK(get_with(soon.value, "/alerts/2").header("X-Token-Expires") == soon_at);
  // Refusals and the token API's answers carry it too.
  auto refused = request(gate.port(), "DELETE", "/alerts/1", {{"X-API-Key", soon.value}});
  CHECK(refused.status == 403);
  CHECK(refused.header("X-Token-Expires") == soon_at);
  CHECK(request(gate.port(), "GET", "/api-tokens/self", {{"X-API-Key", soon.value}})
            .header("X-Token-Expires") == soon_at);
  CHECK_FALSE(get_with(later.value, "/alerts/1").header("X-Token-Expires"));
  CHECK_FALSE(get_with(never.value, "/alerts/1").header("X-Token-Expires"));

  // One warning line for the token today, however many requests, with its fields.
  std::size_t warnings = 0;
  std::string warning;
  eventually([&] {
    std::istringstream text(gate.log_text());
    warnings = 0;
    for (std::string line; std::getline(text, line);)
      if (line.find("API key expires soon") != std::string::npos &&
          line.find(soon.id) != std::string::npos) {
        ++warnings;
        warning = line;
      }
    return warnings > 0;
  });
  CHECK(warnings == 1);
  CHECK_THAT(warning, Catch::Contains(R"("level":"warn")"));
  CHECK_THAT(warning, Catch::Contains(R"("token_id":")" + soon.id + "\""));
  CHECK_THAT(warning, Catch::Contains(R"("token_name":"soon")"));
  CHECK_THAT(warning, Catch::Contains(R"("expires_at":")" + soon_at + "\""));
  CHECK(gate.log_text().find(soon.value) == std::string::npos);
  // Recounted every few seconds off the event loops.
  CHECK(eventually(
      [&] { return metrics().find("tokengate_tokens_expiring 1\n") != std::string::npos; }));
}

TEST_CASE("expiry_warning sets the window", "[lifecycle][expiry]") {
  auto settings = test::example_routes();
  settings.expiry_warning = std::chrono::hours(24);
  lifecycle_fixture f(settings);
  const auto in_two_days = in_days(2);
  const auto two_days = f.create(R"({"name":"two","permissions":["AlertRead"],"expiresAt":")" +
                                 in_two_days + R"("})");
  CHECK_FALSE(f.get_with(two_days.value, "/alerts/1").header("X-Token-Expires"));
  CHECK_THAT(f.gate.log_text(), !Catch::Contains("API key expires soon"));
  CHECK_THAT(test::request(f.gate.admin_port(), "GET", "/metrics").body,
             Catch::Contains("tokengate_tokens_expiring 0"));
}
