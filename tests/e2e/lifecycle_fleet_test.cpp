// The key lifecycle in fleet mode (README "Key lifecycle"): a rotation's overlap and a rate
// limit made on one sidecar travel through PostgreSQL and the change log to the others, and
// survive a replica's restart.
#include "tests/e2e/fleet_support.hpp"

using namespace tokengate;
using test::call;
using test::eventually;

TEST_CASE("an overlap and a rate limit made on one sidecar hold on the others", "[e2e][fleet]") {
  test::fleet_env fleet;
  fleet.start_a_and_b();
  auto [id, old_value] = fleet.create("a");
  CHECK(eventually([&] { return fleet.status("b", old_value) == 200; }));

  auto rotated = call(fleet["a"].port(), "POST", "/api-tokens/" + id + "/rotate", fleet.admin(),
                      R"({"previousValueValidFor": 3600})");
  REQUIRE(rotated.status == 200);
  const std::string new_value(rotated.json().at("value").as_string());
  const std::string until(rotated.json().at("previousValueExpiresAt").as_string());
  CHECK(eventually([&] { return fleet.status("b", new_value) == 200; }));
  auto with_old = call(fleet["b"].port(), "GET", "/alerts/1", old_value);
  CHECK(with_old.status == 200);
  CHECK(with_old.header("X-Token-Rotated") == "expires=" + until);

  auto limited = call(fleet["b"].port(), "POST", "/api-tokens/" + id, fleet.admin(),
                      R"({"name":"t","permissions":["AlertRead"],)"
                      R"("rateLimit":{"requests":2,"perSeconds":86400}})");
  REQUIRE(limited.status == 200);
  // Each sidecar counts its own share: two on A (the first answer that tells of the limit was
  // the first counted), then A refuses, while B still has its own two.
  CHECK(eventually([&] {
    return call(fleet["a"].port(), "GET", "/alerts/1", new_value).header("RateLimit-Policy") ==
           R"("default";q=2;w=86400)";
  }));
  CHECK(fleet.status("a", new_value) == 200);
  CHECK(fleet.status("a", new_value) == 429);
  CHECK(fleet.status("b", new_value) == 200);
  CHECK(call(fleet["a"].port(), "GET", "/api-tokens/" + id, fleet.admin())
            .json()
            .at("previousValueExpiresAt")
            .as_string() == until);

  // B restarts from its replica after kill -9: the overlap is still there.
  fleet["b"].proc().signal(SIGKILL);
  CHECK(fleet["b"].proc().wait(std::chrono::seconds(10)) == 128 + SIGKILL);
  fleet.start("b");
  CHECK(eventually([&] { return fleet.status("b", old_value) == 200; }, std::chrono::seconds(5)));
  CHECK(fleet.status("b", new_value) == 200);

  // A second rotation on B ends the overlap on A.
  REQUIRE(call(fleet["b"].port(), "POST", "/api-tokens/" + id + "/rotate", fleet.admin()).status ==
          200);
  CHECK(eventually([&] { return fleet.status("a", old_value) == 401; }));
  CHECK(eventually([&] { return fleet.status("a", new_value) == 401; }));
}
