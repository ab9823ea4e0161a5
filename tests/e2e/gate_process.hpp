#pragma once

#include "tests/support/http_client.hpp"
#include "tests/support/process.hpp"

#include <catch2/catch.hpp>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

namespace tokengate::test {

/// A request to 127.0.0.1:`port` with `key` in X-API-Key.
inline http_response call(std::uint16_t port, std::string_view method, std::string_view target,
                          const std::string& key, std::string_view body = {}) {
  return request(port, method, target, {{"X-API-Key", key}}, body);
}

/// The real tokengate binary, serving on 127.0.0.1:0 with its data under `dir/data`. The
/// ports are read back from its "listening" log line.
class gate_process {
public:
  gate_process(const std::filesystem::path& dir, std::uint16_t upstream_port,
               std::vector<std::string> extra_args = {},
               std::vector<std::pair<std::string, std::string>> env = {})
      : dir_(dir) {
    std::vector<std::string> args{
        tokengate_binary(), "serve",
        "--listen",         "127.0.0.1:0",
        "--admin-listen",   "127.0.0.1:0",
        "--upstream",       "http://127.0.0.1:" + std::to_string(upstream_port),
        "--data-dir",       "data"};
    args.insert(args.end(), extra_args.begin(), extra_args.end());
    proc_ = std::make_unique<process>(args, dir, env);
    // As the fleet tests: a start slowed by other tests' fsyncs (the sanitizer run, under
    // load) is not a failure; one that never listens still is, and shows what it printed.
    const bool listening =
        proc_->wait_for_output("\"msg\":\"listening\"", std::chrono::seconds(60));
    INFO("stdout: " << proc_->out() << "\nstderr: " << proc_->err());
    REQUIRE(listening);
    port_ = port_after("\"listen\":\"127.0.0.1:");
    admin_port_ = port_after("\"admin_listen\":\"127.0.0.1:");
  }

  [[nodiscard]] std::uint16_t port() const { return port_; }
  [[nodiscard]] std::uint16_t admin_port() const { return admin_port_; }
  [[nodiscard]] process& proc() { return *proc_; }

  [[nodiscard]] std::string admin_key() const {
    std::ifstream in(dir_ / "data" / "admin-token");
    std::string key;
    std::getline(in, key);
    return key;
  }

  /// SIGTERM, then the exit status.
  int terminate() {
    proc_->signal(SIGTERM);
    return wait_exit();
  }

  /// The exit status, once the process ends (within 20 s, or the test fails).
  int wait_exit() {
    auto status = proc_->wait(std::chrono::seconds(20));
    REQUIRE(status.has_value());
    return *status;
  }

private:
  std::uint16_t port_after(std::string_view marker) const {
    const auto out = proc_->out();
    const auto at = out.find(marker);
    REQUIRE(at != std::string::npos);
    return static_cast<std::uint16_t>(std::stoul(out.substr(at + marker.size())));
  }

  std::filesystem::path dir_;
  std::unique_ptr<process> proc_;
  std::uint16_t port_ = 0;
  std::uint16_t admin_port_ = 0;
};

} // namespace tokengate::test
