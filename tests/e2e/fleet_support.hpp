#pragma once

// Fleet mode end to end: real sidecar binaries on one throwaway PostgreSQL cluster.
#include "tests/e2e/gate_process.hpp"
#include "tests/support/pg_cluster.hpp"
#include "tests/support/temp_dir.hpp"
#include "tests/support/test_upstream.hpp"

#include <boost/json.hpp>
#include <catch2/catch.hpp>

#include <chrono>
#include <fstream>
#include <functional>
#include <map>
#include <thread>

namespace tokengate::test {

/// Polls `done` every 5 ms until it holds or `within` has passed; whether it held. The bound
/// only keeps a broken build from hanging: how fast a change spreads is a benchmark figure
/// (`./dev bench`'s F1), never a test's, so a loaded CI machine does not fail the suite.
inline bool eventually(const std::function<bool()>& done,
                       std::chrono::milliseconds within = std::chrono::seconds(15)) {
  const auto deadline = std::chrono::steady_clock::now() + within;
  for (;;) {
    if (done())
      return true;
    if (std::chrono::steady_clock::now() >= deadline)
      return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

/// A cluster, an upstream, and sidecars named "a", "b", ... each with its own data dir, all
/// sharing one bootstrap key (adopted once by the fleet).
class fleet_env {
public:
  fleet_env() {
    std::filesystem::create_directories(dir_ / "keys");
    process keygen({tokengate_binary(), "keygen"}, dir_ / "keys");
    REQUIRE(keygen.wait(std::chrono::seconds(10)) == 0);
    admin_ = keygen.out().substr(0, keygen.out().find('\n'));
    std::ofstream(bootstrap_file()) << admin_ << '\n';
  }

  [[nodiscard]] pg_cluster& pg() { return pg_; }
  [[nodiscard]] const std::string& admin() const { return admin_; }
  [[nodiscard]] std::filesystem::path bootstrap_file() const { return dir_ / "keys" / "admin"; }
  [[nodiscard]] std::filesystem::path dir(const std::string& name) const { return dir_ / name; }
  [[nodiscard]] test_upstream& upstream() { return upstream_; }

  /// Starts sidecar `name` on the database (again, after `stop`), waiting for "listening".
  /// `env`: variables besides the fleet's routes.
  gate_process& start(const std::string& name, std::vector<std::string> extra = {},
                      std::vector<std::pair<std::string, std::string>> env = {}) {
    std::filesystem::create_directories(dir(name));
    std::vector<std::string> args{"--database-url", pg_.url(), "--bootstrap-token-file",
                                  bootstrap_file().string()};
    args.insert(args.end(), extra.begin(), extra.end());
    sidecars_.erase(name);
    auto& g = sidecars_[name];
    env.emplace_back("TOKENGATE_ROUTES", routes);
    g = std::make_unique<gate_process>(dir(name), upstream_.port(), args, std::move(env));
    return *g;
  }
  /// Starts sidecars "a" and "b", in that order; their ports.
  std::pair<std::uint16_t, std::uint16_t> start_a_and_b() {
    return {start("a").port(), start("b").port()};
  }
  gate_process& operator[](const std::string& name) { return *sidecars_.at(name); }
  void stop(const std::string& name) {
    auto& g = *sidecars_.at(name);
    const int status = g.terminate();
    INFO(g.proc().err());
    CHECK(status == 0);
    sidecars_.erase(name);
  }

  /// Creates a token through sidecar `on`; returns {id, value}.
  std::pair<std::string, std::string> create(const std::string& on,
                                             const std::string& permissions = R"(["AlertRead"])") {
    auto r = call((*this)[on].port(), "POST", "/api-tokens", admin_,
                  R"({"name":"t","permissions":)" + permissions + "}");
    REQUIRE(r.status == 200);
    auto doc = r.json();
    return {std::string(doc.at("id").as_string()), std::string(doc.at("value").as_string())};
  }

  /// The status a proxied GET of `path` with `key` gets from sidecar `on`.
  unsigned status(const std::string& on, const std::string& key,
                  std::string_view path = "/alerts/1") {
    return call((*this)[on].port(), "GET", path, key).status;
  }

  static constexpr const char* routes = R"([{"prefix":"/alerts","permissions":["AlertRead"]}])";

private:
  temp_dir dir_;
  pg_cluster pg_;
  test_upstream upstream_;
  std::string admin_;
  std::map<std::string, std::unique_ptr<gate_process>> sidecars_;
};

} // namespace tokengate::test
