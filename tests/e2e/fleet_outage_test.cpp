// Fleet mode when things break: PostgreSQL killed and restarted, sidecars stopped, started
// without the database, or killed during writes, a replica's disk full.
#include "tests/e2e/fleet_support.hpp"
#include "tests/e2e/small_disk.hpp"
#include "tests/support/occurrences.hpp"

#include <atomic>
#include <future>
#include <sstream>

using namespace tokengate;
using test::call;
using test::eventually;

namespace {

constexpr auto recovery = std::chrono::seconds(20);

std::string readyz(test::gate_process& g) {
  return test::request(g.admin_port(), "GET", "/readyz").body;
}

/// The whole lines of `out` that hold `text`, each parsed.
std::vector<boost::json::object> lines_with(const std::string& out, std::string_view text) {
  std::vector<boost::json::object> found;
  std::istringstream lines(out.substr(0, out.rfind('\n') + 1));
  for (std::string line; std::getline(lines, line);)
    if (line.find(text) != std::string::npos)
      found.push_back(boost::json::parse(line).as_object());
  return found;
}

/// Seconds into the day of a log line's "time" ("2026-11-30T04:32:27.563Z").
double seconds_of(const boost::json::object& line) {
  const std::string time(line.at("time").as_string());
  REQUIRE(time.size() == 24);
  return std::stoi(time.substr(11, 2)) * 3600.0 + std::stoi(time.substr(14, 2)) * 60.0 +
         std::stod(time.substr(17, 6));
}

/// The `"msg":"..."` of a log line whose message is `text`.
std::string msg(const std::string& text) { return R"("msg":")" + text + '"'; }

/// Sidecars A and B on the database, A's data directory (its replica) on a 4 MiB tmpfs that
/// `fill_until` fills; A's output goes elsewhere. Mounting needs root: elsewhere a warning,
/// `disk.mounted()` false and no sidecar started.
struct small_disk_fleet {
  small_disk_fleet() {
    if (disk.mounted())
      fleet.start_a_and_b();
    else
      WARN("skipped: mounting a tmpfs needs root");
  }

  /// Whether A has printed `text`.
  [[nodiscard]] bool said(const std::string& text) {
    return fleet["a"].proc().out().find(text) != std::string::npos;
  }

  /// Fills the disk, then creates tokens through sidecar `on` until A prints `text`: the
  /// replica's log file takes the first changes in room it had left, a few more fill it. Each
  /// is taken (its key accepted on A) before the next is made: the one that is not is the last,
  /// returned as {id, key}.
  std::pair<std::string, std::string> fill_until(const std::string& on, const std::string& text) {
    disk.fill();
    std::pair<std::string, std::string> last;
    for (int i = 0; i < 200; ++i) {
      last = fleet.create(on);
      REQUIRE(eventually([&] { return said(text) || fleet.status("a", last.second) == 200; }));
      if (said(text))
        break;
    }
    REQUIRE(said(text));
    return last;
  }

  test::fleet_env fleet;
  test::small_disk disk{fleet.dir("a") / "data", "4m"};
};

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
  const auto stale = R"(tokengate_auth_decisions_total{outcome="stale"} )";
  const auto scrape = [&] { return test::request(a.admin_port(), "GET", "/metrics").body; };
  CHECK_THAT(scrape(), Catch::Contains(std::string(stale) + "0\n"));
  auto refused = call(a.port(), "GET", "/alerts/1", key);
  CHECK(refused.status == 401);
  CHECK_THAT(refused.message(), Catch::Contains("lost its token database"));
  // README "Metrics": the refusal is counted under outcome="stale" (just after its answer).
  CHECK(eventually([&] { return scrape().find(std::string(stale) + "1\n") != std::string::npos; }));
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

TEST_CASE_METHOD(
    small_disk_fleet,
    "a replica on a full disk: the keys changed elsewhere are refused here, one error line "
    "every 10 s gives RocksDB's reason, and the changes are taken once space is freed",
    "[e2e][fleet][outage][disk]") {
  if (!disk.mounted())
    return; // warned
  auto& a = fleet["a"];
  auto [kept_id, kept] = fleet.create("b");
  auto [gone_id, gone] = fleet.create("b");
  auto [rotated_id, rotated_away] = fleet.create("b");
  REQUIRE(eventually([&] {
    return fleet.status("a", kept) == 200 && fleet.status("a", gone) == 200 &&
           fleet.status("a", rotated_away) == 200;
  }));

  const std::string failed_msg =
      "replica write failed: the tokens changed in the database since are refused on this "
      "sidecar until the local replica takes the change; retrying with backoff";
  const std::string failed = msg(failed_msg);
  const std::string recovered_msg = "the local replica takes the token changes again: in sync";
  const std::string recovered = msg(recovered_msg);

  // Changes made on B until A's follower fails to write one.
  const std::string last = fill_until("b", failed).second;
  CHECK(fleet.status("a", last) == 401);
  CHECK(fleet.status("a", kept) == 200); // decided from memory

  // Changes made elsewhere meanwhile: their keys are refused here at once, the new one too.
  REQUIRE(call(fleet["b"].port(), "DELETE", "/api-tokens/" + gone_id, fleet.admin()).status == 204);
  auto rotated =
      call(fleet["b"].port(), "POST", "/api-tokens/" + rotated_id + "/rotate", fleet.admin());
  REQUIRE(rotated.status == 200);
  const std::string fresh(rotated.json().at("value").as_string());
  CHECK(eventually([&] { return fleet.status("a", gone) == 401; }));
  CHECK(eventually([&] { return fleet.status("a", rotated_away) == 401; }));
  CHECK(fleet.status("a", fresh) == 401); // the replica does not hold it yet
  CHECK(fleet.status("a", kept) == 200);  // not changed: untouched

  // One error line, again 10 s later while it lasts, not one per retry.
  REQUIRE(eventually([&] { return test::occurrences(a.proc().out(), failed) >= 2; },
                     std::chrono::seconds(30)));
  const auto failures = lines_with(a.proc().out(), failed);
  REQUIRE(failures.size() >= 2);
  for (const auto& line : failures) {
    INFO(boost::json::serialize(line));
    CHECK(line.at("level") == "error");
    CHECK(line.at("msg").as_string() == failed_msg);
    CHECK_THAT(std::string(line.at("reason").as_string()),
               Catch::Contains("No space left on device"));
  }
  auto gap = seconds_of(failures[1]) - seconds_of(failures[0]);
  if (gap < 0)
    gap += 24 * 3600.0; // past midnight
  CHECK(gap >= 9.5);
  CHECK(fleet.status("a", fresh) == 401);
  CHECK(fleet.status("a", kept) == 200);

  // Far less than the 64 MiB RocksDB would wait for to resume by itself.
  disk.free();
  REQUIRE(a.proc().wait_for_output(recovered, recovery));
  const auto recoveries = lines_with(a.proc().out(), recovered);
  REQUIRE(recoveries.size() == 1);
  CHECK(recoveries[0].at("level") == "info");
  const auto out = a.proc().out();
  CHECK(out.rfind(failed) < out.find(recovered));
  // The replica's failure is its own, not reported as the database's.
  CHECK_THAT(out, !Catch::Contains("token database unreachable"));
  CHECK(eventually([&] { return fleet.status("a", fresh) == 200; }));
  CHECK(fleet.status("a", rotated_away) == 401);
  CHECK(fleet.status("a", gone) == 401);
  CHECK(fleet.status("a", last) == 200);
  CHECK(fleet.status("a", kept) == 200);
  fleet.stop("a");
}

TEST_CASE_METHOD(
    small_disk_fleet,
    "a replica on a full disk: writes through its own token API are answered as done, "
    "one error line names each token, and the new keys are refused here until the change "
    "log brings them in",
    "[e2e][fleet][outage][disk]") {
  if (!disk.mounted())
    return; // warned
  auto& a = fleet["a"];
  auto [kept_id, kept] = fleet.create("a");
  auto [rotated_id, rotated_away] = fleet.create("a");
  auto [narrowed_id, narrowed] = fleet.create("a");
  auto [gone_id, gone] = fleet.create("a");

  const std::string failed_msg =
      "the local replica did not take a token write the database committed: the token is "
      "refused on this sidecar until the change log brings it in";
  const std::string failed = msg(failed_msg);
  const auto failures_of = [&](const std::string& id) {
    std::vector<boost::json::object> of_id;
    for (auto& line : lines_with(a.proc().out(), failed))
      if (line.at("token_id") == id.c_str())
        of_id.push_back(std::move(line));
    return of_id;
  };

  // Creates through A until its replica does not take one (each answered 200): the last.
  const auto [created_id, created] = fill_until("a", failed);
  CHECK(fleet.status("a", created) == 401);
  // A's token API reads the token as its replica holds it: from before the write.
  const auto get_created = [&](const char* on) {
    return call(fleet[on].port(), "GET", "/api-tokens/" + created_id, fleet.admin()).status;
  };
  CHECK(get_created("a") == 404);
  auto rotated = call(a.port(), "POST", "/api-tokens/" + rotated_id + "/rotate", fleet.admin());
  REQUIRE(rotated.status == 200);
  const std::string fresh(rotated.json().at("value").as_string());
  CHECK(fleet.status("a", fresh) == 401); // both values, until the replica holds the new one
  CHECK(fleet.status("a", rotated_away) == 401);
  auto updated = call(a.port(), "POST", "/api-tokens/" + narrowed_id, fleet.admin(),
                      R"({"name":"t","permissions":["RuleRead"]})");
  REQUIRE(updated.status == 200);
  CHECK(updated.json().at("permissions") == boost::json::array{"RuleRead"});
  CHECK(fleet.status("a", narrowed) != 200); // the narrowing holds at once
  REQUIRE(call(a.port(), "DELETE", "/api-tokens/" + gone_id, fleet.admin()).status == 204);
  CHECK(fleet.status("a", gone) == 401);

  // Each write: one error line, naming the token, with RocksDB's reason.
  for (const auto& id : {created_id, rotated_id, narrowed_id, gone_id}) {
    INFO("token " << id);
    REQUIRE(eventually([&] { return !failures_of(id).empty(); }));
    const auto lines = failures_of(id);
    REQUIRE(lines.size() == 1);
    INFO(boost::json::serialize(lines[0]));
    CHECK(lines[0].at("level") == "error");
    CHECK(lines[0].at("msg").as_string() == failed_msg);
    CHECK_FALSE(lines[0].at("error").as_string().empty());
    CHECK_THAT(std::string(lines[0].at("reason").as_string()),
               Catch::Contains("No space left on device"));
  }

  // The database took them all: B follows.
  CHECK(eventually([&] { return fleet.status("b", created) == 200; }));
  CHECK(eventually([&] { return fleet.status("b", fresh) == 200; }));
  CHECK(eventually([&] { return fleet.status("b", rotated_away) == 401; }));
  CHECK(eventually([&] { return fleet.status("b", narrowed) == 403; }));
  CHECK(eventually([&] { return fleet.status("b", gone) == 401; }));
  CHECK(get_created("b") == 200);

  // A, its follower failing too, refuses the keys its replica does not hold, the rotation's old
  // one too; the updated token's key is refused on /alerts (401 once the follower's page with
  // the update fails), the deleted one everywhere; an untouched key is accepted.
  REQUIRE(a.proc().wait_for_output("\"msg\":\"replica write failed", recovery));
  std::this_thread::sleep_for(std::chrono::seconds(1)); // the follower's retries
  CHECK(fleet.status("a", created) == 401);
  CHECK(fleet.status("a", fresh) == 401);
  CHECK(fleet.status("a", rotated_away) == 401);
  CHECK(fleet.status("a", narrowed) != 200);
  CHECK(fleet.status("a", narrowed, "/open") == 401); // outright, once the follower failed too
  CHECK(fleet.status("a", gone) == 401);
  CHECK(fleet.status("a", kept) == 200);
  CHECK(get_created("a") == 404);

  // Space freed: the follower brings the changes in; A accepts the new keys, the updated one
  // with its narrowed permissions.
  disk.free();
  CHECK(eventually([&] { return fleet.status("a", created) == 200; }, recovery));
  CHECK(get_created("a") == 200);
  CHECK(eventually([&] { return fleet.status("a", fresh) == 200; }, recovery));
  CHECK(eventually([&] { return fleet.status("a", narrowed, "/open") == 200; }, recovery));
  CHECK(fleet.status("a", narrowed) == 403);
  CHECK(fleet.status("a", rotated_away) == 401);
  CHECK(fleet.status("a", gone) == 401);
  CHECK(fleet.status("a", kept) == 200);
  fleet.stop("a");
}
