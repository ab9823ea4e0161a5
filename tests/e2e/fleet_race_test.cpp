// Two sidecars changing one token at once (README "Running a fleet"): both changes are kept,
// and a deleted token never comes back. Each round checks the state both sidecars converge to,
// so a change lost in one round is not hidden by the next.
#include "tests/e2e/fleet_support.hpp"

#include <latch>

using namespace tokengate;
using test::call;
using test::eventually;
using test::http_response;

namespace {

/// Runs `first` and `second` on two threads released at the same moment; their answers.
std::pair<http_response, http_response> at_once(const std::function<http_response()>& first,
                                                const std::function<http_response()>& second) {
  std::latch go(2);
  std::pair<http_response, http_response> out;
  std::thread one([&] {
    go.arrive_and_wait();
    out.first = first();
  });
  std::thread two([&] {
    go.arrive_and_wait();
    out.second = second();
  });
  one.join();
  two.join();
  return out;
}

std::string named(const std::string& name) {
  return R"({"name":")" + name + R"(","permissions":["AlertRead"]})";
}

} // namespace

TEST_CASE("a rotation on one sidecar and a rename on another, at once: the fleet keeps both",
          "[e2e][fleet][race]") {
  test::fleet_env fleet;
  const auto [pa, pb] = fleet.start_a_and_b();
  auto [id, key] = fleet.create("a");
  REQUIRE(eventually([&] { return fleet.status("b", key) == 200; }));

  for (int round = 0; round < 24; ++round) {
    INFO("round " << round);
    const auto name = "round-" + std::to_string(round);
    const auto rotate = [&] {
      return call(pa, "POST", "/api-tokens/" + id + "/rotate", fleet.admin());
    };
    const auto rename = [&] {
      return call(pb, "POST", "/api-tokens/" + id, fleet.admin(), named(name));
    };
    // Even rounds race the two; odd ones rename on B right after A's rotation answered, while
    // B's replica most likely still holds the token as it was before.
    std::pair<http_response, http_response> answers;
    if (round % 2 == 0)
      answers = at_once(rotate, rename);
    else {
      answers.first = rotate();
      answers.second = rename();
    }
    const auto& [rotated, renamed] = answers;
    INFO(rotated.body << renamed.body);
    REQUIRE(rotated.status == 200);
    REQUIRE(renamed.status == 200);
    const std::string fresh(rotated.json().at("value").as_string());

    for (const auto* on : {"a", "b"}) {
      INFO("on " << on);
      const auto port = fleet[on].port();
      CHECK(eventually([&] {
        auto got = call(port, "GET", "/api-tokens/" + id, fleet.admin());
        return got.status == 200 && got.json().at("name") == boost::json::value(name);
      }));
      // The key handed out works, the one it replaced never again.
      CHECK(eventually([&] { return fleet.status(on, fresh) == 200; }));
      CHECK(eventually([&] { return fleet.status(on, key) == 401; }));
    }
    key = fresh;
  }
  CHECK(fleet.pg().query("SELECT payload LIKE '%round-23%' FROM tokengate_tokens WHERE id = '" +
                             id + "'",
                         "postgres") == "t");
}

TEST_CASE("a rotation or a rename racing a delete on another sidecar never brings the token back",
          "[e2e][fleet][race]") {
  test::fleet_env fleet;
  const auto [pa, pb] = fleet.start_a_and_b();

  for (int round = 0; round < 12; ++round) {
    INFO("round " << round);
    auto [id, key] = fleet.create("a");
    REQUIRE(eventually([&] { return fleet.status("b", key) == 200; }));
    const bool rotating = round % 2 == 0;
    auto [changed, deleted] = at_once(
        [&, id = id] {
          return rotating ? call(pb, "POST", "/api-tokens/" + id + "/rotate", fleet.admin())
                          : call(pb, "POST", "/api-tokens/" + id, fleet.admin(), named("late"));
        },
        [&, id = id] { return call(pa, "DELETE", "/api-tokens/" + id, fleet.admin()); });
    INFO(changed.body << deleted.body);
    REQUIRE(deleted.status == 204);
    // Before the delete (200, then deleted with it) or after it (404): never in between.
    REQUIRE((changed.status == 200 || changed.status == 404));
    std::vector<std::string> keys{key};
    if (rotating && changed.status == 200)
      keys.emplace_back(changed.json().at("value").as_string());

    for (const auto* on : {"a", "b"}) {
      INFO("on " << on);
      const auto port = fleet[on].port();
      CHECK(eventually(
          [&] { return call(port, "GET", "/api-tokens/" + id, fleet.admin()).status == 404; }));
      for (const auto& k : keys)
        CHECK(eventually([&] { return fleet.status(on, k) == 401; }));
    }
    CHECK(fleet.pg().query("SELECT count(*) FROM tokengate_tokens WHERE id = '" + id + "'",
                           "postgres") == "0");
  }
  // Only the bootstrap token is left.
  CHECK(fleet.pg().query("SELECT count(*) FROM tokengate_tokens", "postgres") == "1");
}
