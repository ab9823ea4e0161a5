// Per-token rate limits (README "Key lifecycle"), through the real sidecar and upstream: N
// requests pass, the next is a 429 with Retry-After and the RateLimit fields, the window refills,
// concurrent clients never get more than N through, and a change through the API applies to the
// next request.
#include "tests/integration/lifecycle_support.hpp"

#include <atomic>
#include <regex>
#include <thread>
#include <vector>

using namespace tokengate;
using test::eventually;
using test::lifecycle_fixture;
using test::request;

namespace {

// A window of a day: no test here runs into the next one but by a one-in-ten-thousand chance.
constexpr std::string_view a_day = "86400";

std::string limited(std::string_view requests, std::string_view seconds = a_day) {
  return R"({"name":"limited","permissions":["AlertRead"],"rateLimit":{"requests":)" +
         std::string(requests) + R"(,"perSeconds":)" + std::string(seconds) + "}}";
}

// The r of `RateLimit: "default";r=R;t=T`, or -1.
long remaining(const test::http_response& r) {
  std::smatch m;
  const auto field = r.header("RateLimit").value_or("");
  static const std::regex shape(R"re("default";r=(\d+);t=(\d+))re");
  return std::regex_match(field, m, shape) ? std::stol(m[1]) : -1;
}

} // namespace

TEST_CASE_METHOD(lifecycle_fixture, "N requests pass, the next is a 429 with the RateLimit fields",
                 "[lifecycle][rate]") {
  const auto t = create(limited("3"));
  CHECK(token(t.id).at("rateLimit") == boost::json::object{{"requests", 3}, {"perSeconds", 86400}});
  for (long left = 2; left >= 0; --left) {
    auto r = get_with(t.value, "/alerts/1");
    CHECK(r.status == 200);
    CHECK(r.header("RateLimit-Policy") == R"("default";q=3;w=86400)");
    CHECK(remaining(r) == left);
    CHECK_FALSE(r.header("Retry-After"));
  }
  upstream.clear();
  auto refused = get_with(t.value, "/alerts/1");
  CHECK(refused.status == 429);
  CHECK(refused.message() == "rate limit exceeded: 3 requests per 86400 s");
  CHECK(refused.header("RateLimit-Policy") == R"("default";q=3;w=86400)");
  CHECK(remaining(refused) == 0);
  REQUIRE(refused.header("Retry-After"));
  const auto retry = std::stol(*refused.header("Retry-After"));
  CHECK(retry >= 1);
  CHECK(retry <= 86400);
  // Retry-After is the RateLimit field's t=, the seconds until the next window.
  const auto fields = refused.header("RateLimit").value_or("");
  CHECK(fields.ends_with(";t=" + std::to_string(retry)));
  CHECK(upstream.requests().empty());

  // A token without a limit is not told of one; nor is the token API counted.
  auto other = gate.create_token("free", {"AlertRead"});
  CHECK_FALSE(get_with(other.value, "/alerts/1").header("RateLimit"));
  CHECK(request(gate.port(), "GET", "/api-tokens/self", {{"X-API-Key", t.value}}).status == 200);

  // The one 429 is counted (README "Metrics").
  CHECK_THAT(request(gate.admin_port(), "GET", "/metrics").body,
             Catch::Contains("tokengate_rate_limited_total 1\n"));
}

TEST_CASE_METHOD(lifecycle_fixture, "the window refills", "[lifecycle][rate]") {
  const auto t = create(limited("1", "1"));
  // Within one second the second request is refused; in the next, one passes again.
  CHECK(eventually([&] { return get_with(t.value, "/alerts/1").status == 429; }));
  CHECK(eventually([&] { return get_with(t.value, "/alerts/1").status == 200; }));
}

TEST_CASE_METHOD(lifecycle_fixture, "concurrent clients never get more than N through",
                 "[lifecycle][rate]") {
  const auto t = create(limited("50"));
  std::atomic<int> passed{0}, refused{0}, other{0};
  std::vector<std::thread> clients;
  for (int c = 0; c < 8; ++c)
    clients.emplace_back([&] {
      test::http_client client(gate.port());
      for (int i = 0; i < 20; ++i) {
        const auto r = client.request("GET", "/alerts/1", {{"X-API-Key", t.value}});
        (r.status == 200 ? passed : r.status == 429 ? refused : other)++;
      }
    });
  for (auto& c : clients)
    c.join();
  CHECK(passed == 50);
  CHECK(refused == 110);
  CHECK(other == 0);
  CHECK(upstream.requests().size() == 50);
}

TEST_CASE_METHOD(lifecycle_fixture, "a limit changed through the API applies to the next request",
                 "[lifecycle][rate]") {
  const auto t = create(limited("2"));
  CHECK(get_with(t.value, "/alerts/1").status == 200);
  CHECK(get_with(t.value, "/alerts/1").status == 200);
  CHECK(get_with(t.value, "/alerts/1").status == 429);

  // Raised: a changed limit starts a fresh window.
  auto raised = api("POST", "/api-tokens/" + t.id,
                    R"({"name":"limited","permissions":["AlertRead"],)"
                    R"("rateLimit":{"requests":5,"perSeconds":86400}})");
  REQUIRE(raised.status == 200);
  CHECK(raised.json().at("rateLimit").at("requests") == 5);
  auto r = get_with(t.value, "/alerts/1");
  CHECK(r.status == 200);
  CHECK(r.header("RateLimit-Policy") == R"("default";q=5;w=86400)");
  CHECK(remaining(r) == 4);

  // An update that leaves rateLimit out keeps it (as Panther's clients send it).
  REQUIRE(api("POST", "/api-tokens/" + t.id, R"({"name":"renamed","permissions":["AlertRead"]})")
              .status == 200);
  CHECK(get_with(t.value, "/alerts/1").header("RateLimit-Policy") == R"("default";q=5;w=86400)");

  // Lowered: a fresh window of the new limit. Removed: no limit, no fields.
  REQUIRE(api("POST", "/api-tokens/" + t.id,
              R"({"name":"limited","permissions":["AlertRead"],)"
              R"("rateLimit":{"requests":1,"perSeconds":86400}})")
              .status == 200);
  CHECK(get_with(t.value, "/alerts/1").status == 200);
  CHECK(get_with(t.value, "/alerts/1").status == 429);
  auto removed = api("POST", "/api-tokens/" + t.id,
                     R"({"name":"limited","permissions":["AlertRead"],"rateLimit":null})");
  REQUIRE(removed.status == 200);
  CHECK_FALSE(removed.json().as_object().contains("rateLimit"));
  auto free = get_with(t.value, "/alerts/1");
  CHECK(free.status == 200);
  CHECK_FALSE(free.header("RateLimit"));
  CHECK_FALSE(free.header("RateLimit-Policy"));
}

TEST_CASE_METHOD(lifecycle_fixture, "an update that keeps the limit keeps the count",
                 "[lifecycle][rate]") {
  const auto t = create(limited("3"));
  REQUIRE(get_with(t.value, "/alerts/1").status == 200);
  REQUIRE(get_with(t.value, "/alerts/1").status == 200);
  // A rename, and an update naming the same limit: neither resets the window.
  REQUIRE(api("POST", "/api-tokens/" + t.id, R"({"name":"renamed","permissions":["AlertRead"]})")
              .status == 200);
  REQUIRE(api("POST", "/api-tokens/" + t.id,
              R"({"name":"renamed","permissions":["AlertRead"],)"
              R"("rateLimit":{"requests":3,"perSeconds":86400}})")
              .status == 200);
  const auto third = get_with(t.value, "/alerts/1");
  CHECK(third.status == 200);
  CHECK(remaining(third) == 0);
  CHECK(get_with(t.value, "/alerts/1").status == 429);
}

TEST_CASE_METHOD(lifecycle_fixture, "rateLimit is checked field by field", "[lifecycle][rate]") {
  const std::pair<std::string_view, std::string_view> bad[]{
      {R"({"requests":0,"perSeconds":60})", "rateLimit.requests"},
      {R"({"requests":1000000001,"perSeconds":60})", "rateLimit.requests"},
      {R"({"requests":"5","perSeconds":60})", "rateLimit.requests"},
      {R"({"requests":5,"perSeconds":0})", "rateLimit.perSeconds"},
      {R"({"requests":5,"perSeconds":86401})", "rateLimit.perSeconds"},
      {R"({"requests":5})", "rateLimit.perSeconds"},
      {R"({"perSeconds":5})", "rateLimit.requests"},
      {R"({"requests":5,"perSeconds":60,"burst":2})", "burst"},
      {R"({"requests":5,"requests":6,"perSeconds":60})", "duplicate"},
      {R"(5)", "rateLimit"},
  };
  for (const auto& [limit, mentions] : bad) {
    INFO(limit);
    auto r = api("POST", "/api-tokens",
                 R"({"name":"x","permissions":[],"rateLimit":)" + std::string(limit) + "}");
    CHECK(r.status == 400);
    CHECK_THAT(r.message(), Catch::Contains(std::string(mentions)));
  }
}

TEST_CASE_METHOD(lifecycle_fixture,
                 "a longer perSeconds through the API lets the key through again at once",
                 "[lifecycle][rate]") {
  const auto t = create(limited("1", "60"));
  // Used up (a request that lands in the next minute just counts there).
  CHECK(eventually([&] { return get_with(t.value, "/alerts/1").status == 429; }));
  REQUIRE(api("POST", "/api-tokens/" + t.id,
              R"({"name":"limited","permissions":["AlertRead"],)"
              R"("rateLimit":{"requests":1,"perSeconds":3600}})")
              .status == 200);
  auto r = get_with(t.value, "/alerts/1");
  CHECK(r.status == 200);
  CHECK(r.header("RateLimit-Policy") == R"("default";q=1;w=3600)");
  CHECK(get_with(t.value, "/alerts/1").status == 429);
}
