// Fleet mode when things break: PostgreSQL killed and restarted, sidecars stopped, started
// without the database, or killed during writes.
#include "tests/e2e/fleet_support.hpp"

#include <atomic>
#include <future>

using namespace tokengate;
using test::call;
using test::eventually;

namespace {

constexpr auto recovery = std::chrono::seconds(20);

std::string readyz(test::gate_process& g) {
  return test::request(g.admin_port(), "GET", "/readyz").body;
}

} // namespace

TEST_CASE("PostgreSQL killed under traffic: decisions go on, writes get 503, and the sidecars "
          "catch up once it is back",
          "[e2e][fleet][outage]") {
  test::fleet_env fleet;
  fleet.start_a_and_b();
  auto [valid_id, valid] = fleet.create("a");
  auto [revoked_id, revoked] = fleet.create("a");
  REQUIRE(call(fleet["a"].port(), "DELETE", "/api-tokens/" + revoked_id, fleet.admin()).status ==
          204);
  REQUIRE(eventually([&] { return fleet.status("b", valid) == 200; }));
  REQUIRE(eventually([&] { return fleet.status("b", revoked) == 401; }));
  const auto tokens_before = fleet.pg().query("SELECT count(*) FROM tokengate_tokens", "postgres");

  // Traffic on both sidecars while the database dies.
  std::atomic<bool> stop{false};
  std::atomic<int> wrong{0}, answered{0};
  auto traffic = std::async(std::launch::async, [&] {
    while (!stop) {
      for (const auto* s : {"a", "b"}) {
        wrong += fleet.status(s, valid) != 200;
        wrong += fleet.status(s, revoked) != 401;
        answered += 2;
      }
    }
  });
  fleet.pg().kill();
  auto write = call(fleet["a"].port(), "POST", "/api-tokens", fleet.admin(),
                    R"({"name":"during","permissions":["AlertRead"]})");
  CHECK(write.status == 503);
  CHECK(write.message() == "token store unavailable");
  CHECK(call(fleet["b"].port(), "DELETE", "/api-tokens/" + valid_id, fleet.admin()).status == 503);
  // Reads come from the replica.
  CHECK(call(fleet["b"].port(), "GET", "/api-tokens/" + valid_id, fleet.admin()).status == 200);
  CHECK(eventually([&] { return readyz(fleet["a"]).find("unreachable") != std::string::npos; },
                   recovery));
  CHECK_THAT(readyz(fleet["a"]), Catch::Contains("\"staleness_ms\":"));
  CHECK(fleet["a"].proc().wait_for_output("token database unreachable"));
  std::this_thread::sleep_for(std::chrono::milliseconds(300)); // traffic through the outage

  fleet.pg().start();
  stop = true;
  traffic.get();
  CHECK(wrong == 0);
  CHECK(answered > 0);
  // Nothing of the refused writes reached the database.
  CHECK(fleet.pg().query("SELECT count(*) FROM tokengate_tokens", "postgres") == tokens_before);

  // Writes work again, and reach the other sidecar without a restart.
  std::pair<std::string, std::string> after;
  REQUIRE(eventually(
      [&] {
        auto r = call(fleet["b"].port(), "POST", "/api-tokens", fleet.admin(),
                      R"({"name":"after","permissions":["AlertRead"]})");
        if (r.status == 200)
          after = {std::string(r.json().at("id").as_string()),
                   std::string(r.json().at("value").as_string())};
        return r.status == 200;
      },
      recovery));
  CHECK(eventually([&] { return fleet.status("a", after.second) == 200; }, recovery));
  CHECK(eventually([&] { return readyz(fleet["a"]).find("connected") != std::string::npos; },
                   recovery));
  CHECK(fleet["a"].proc().wait_for_output("token database reachable again"));
}

TEST_CASE("a sidecar stopped during changes catches up at start", "[e2e][fleet][outage]") {
  test::fleet_env fleet;
  fleet.start_a_and_b();
  auto [gone_id, gone] = fleet.create("a");
  REQUIRE(eventually([&] { return fleet.status("b", gone) == 200; }));
  fleet.stop("b");

  auto [new_id, fresh] = fleet.create("a");
  REQUIRE(call(fleet["a"].port(), "DELETE", "/api-tokens/" + gone_id, fleet.admin()).status == 204);
  fleet.start("b"); // ready when it listens: it caught up first
  CHECK(fleet.status("b", fresh) == 200);
  CHECK(fleet.status("b", gone) == 401);
}

TEST_CASE("started while PostgreSQL is down: served from the replica, or not ready without one",
          "[e2e][fleet][outage]") {
  test::fleet_env fleet;
  fleet.start("a");
  auto [id, key] = fleet.create("a");
  fleet.stop("a");
  fleet.pg().kill();

  auto& a = fleet.start("a");
  CHECK(fleet.status("a", key) == 200);
  CHECK_THAT(readyz(a), Catch::Contains("\"status\":\"ready\""));
  CHECK_THAT(readyz(a), Catch::Contains("\"database\":\"unreachable\""));
  CHECK(call(a.port(), "POST", "/api-tokens", fleet.admin(), R"({"name":"x","permissions":[]})")
            .status == 503);

  // No replica either: listening, not ready, one line that says why.
  auto& c = fleet.start("c");
  CHECK(test::request(c.admin_port(), "GET", "/readyz").status == 503);
  REQUIRE(c.proc().wait_for_output("not ready: the token database is unreachable"));
  CHECK(fleet.status("c", key) == 401);

  fleet.pg().start();
  CHECK(eventually([&] { return test::request(c.admin_port(), "GET", "/readyz").status == 200; },
                   recovery));
  CHECK(fleet.status("c", key) == 200);
  CHECK(eventually([&] { return readyz(a).find("connected") != std::string::npos; }, recovery));
  const auto out = c.proc().out();
  CHECK(out.find("not ready") == out.rfind("not ready")); // said once, not at every retry
}

TEST_CASE("max_staleness_ms: cut off longer than that, every key is refused until back in sync",
          "[e2e][fleet][outage]") {
  test::fleet_env fleet;
  auto& a = fleet.start("a", {"--max-staleness-ms", "2000"});
  auto [id, key] = fleet.create("a");
  CHECK(fleet.status("a", key) == 200);
  fleet.pg().kill();
  CHECK(fleet.status("a", key) == 200); // not yet
  REQUIRE(a.proc().wait_for_output("longer than max_staleness_ms", recovery));
  auto refused = call(a.port(), "GET", "/alerts/1", key);
  CHECK(refused.status == 401);
  CHECK_THAT(refused.message(), Catch::Contains("lost its token database"));
  fleet.pg().start();
  CHECK(eventually([&] { return fleet.status("a", key) == 200; }, recovery));
}

TEST_CASE("max_staleness_ms holds when the database stops answering, its connections open",
          "[e2e][fleet][outage]") {
  test::fleet_env fleet;
  auto& a = fleet.start("a", {"--max-staleness-ms", "2000"});
  auto [id, key] = fleet.create("a");
  CHECK(fleet.status("a", key) == 200);
  // A stall, not an outage: nothing is refused or reset, nothing answers.
  fleet.pg().freeze();
  // The last sync was at most a poll (1 s) ago: refused within the bound, and a little.
  CHECK(eventually([&] { return fleet.status("a", key) == 401; }, std::chrono::seconds(5)));
  auto refused = call(a.port(), "GET", "/alerts/1", key);
  CHECK(refused.status == 401);
  CHECK_THAT(refused.message(), Catch::Contains("lost its token database"));
  fleet.pg().thaw();
  CHECK(eventually([&] { return fleet.status("a", key) == 200; }, recovery));
}

TEST_CASE("a token call held by a frozen database at shutdown gets a 503 and its access line",
          "[e2e][fleet][outage][shutdown]") {
  test::fleet_env fleet;
  auto& a = fleet.start("a", {}, {{"TOKENGATE_SHUTDOWN_TIMEOUT_MS", "300"}});
  fleet.pg().freeze();
  // The create waits for the database (up to its 15 s query timeout) on the token API's thread,
  // out of reach of the cut that ends every wait on a socket.
  test::raw_connection client(a.port());
  const std::string body = R"({"name":"held","permissions":["AlertRead"]})";
  REQUIRE(client.send("POST /api-tokens HTTP/1.1\r\nHost: x\r\nX-API-Key: " + fleet.admin() +
                      "\r\nContent-Type: application/json\r\nContent-Length: " +
                      std::to_string(body.size()) + "\r\n\r\n" + body));
  std::this_thread::sleep_for(std::chrono::seconds(1)); // the head read, the call on its way
  a.proc().signal(SIGTERM);
  // The 503, then the close (the exit waits for the call, up to its query timeout).
  const auto answer = client.read_until_close(std::chrono::seconds(10));
  CHECK(test::status_of(answer) == 503);
  CHECK_THAT(answer, Catch::Contains("the sidecar is shutting down"));
  const bool logged = a.proc().wait_for_output("\"cut\":\"shutdown\"", std::chrono::seconds(5));
  fleet.pg().thaw(); // the stop then writes what it holds, and ends
  REQUIRE(logged);
  const auto out = a.proc().out();
  const auto line_at = out.rfind('\n', out.find("\"cut\":\"shutdown\""));
  const auto line = out.substr(line_at + 1, out.find('\n', line_at + 1) - line_at - 1);
  CHECK_THAT(line, Catch::Contains("\"method\":\"POST\",\"path\":\"/api-tokens\",\"status\":503"));
  auto status = a.proc().wait(std::chrono::seconds(40));
  REQUIRE(status.has_value());
  CHECK(*status == 0);
}

TEST_CASE("kill -9 of a sidecar during writes: every answered write is in PostgreSQL and "
          "reaches the others",
          "[e2e][fleet][outage]") {
  test::fleet_env fleet;
  fleet.start_a_and_b();
  std::vector<std::pair<std::string, std::string>> answered;
  std::atomic<bool> killed{false};
  auto writer = std::async(std::launch::async, [&] {
    try {
      while (true) {
        auto r = call(fleet["a"].port(), "POST", "/api-tokens", fleet.admin(),
                      R"({"name":"w","permissions":["AlertRead"]})");
        if (r.status != 200)
          break;
        answered.emplace_back(std::string(r.json().at("id").as_string()),
                              std::string(r.json().at("value").as_string()));
        if (killed)
          break;
      }
    } catch (const std::exception&) { // the connection died with the sidecar
    }
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  fleet["a"].proc().signal(SIGKILL);
  killed = true;
  writer.get();
  REQUIRE(answered.size() > 0);
  for (const auto& [id, value] : answered) {
    CHECK(fleet.pg().query("SELECT count(*) FROM tokengate_tokens WHERE id = '" + id + "'",
                           "postgres") == "1");
    CHECK(eventually([&] { return fleet.status("b", value) == 200; }));
  }
}
