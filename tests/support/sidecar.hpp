#pragma once

#include "proxy/config.hpp"
#include "tests/support/temp_dir.hpp"

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace tokengate::test {

/// The real tokengate server, in this process: RocksDB in a temp dir, listeners on
/// 127.0.0.1:0, the upstream on `upstream_port`, the access log in a file the test can read.
class sidecar {
public:
  /// `settings`: listen, admin_listen, the upstream's port and data_dir are filled in here (the
  /// upstream's host is the default 127.0.0.1 unless `settings` names another; the main
  /// listener's host is 127.0.0.1 unless `settings` names "::").
  sidecar(std::uint16_t upstream_port, proxy::config settings = {});
  ~sidecar();
  sidecar(const sidecar&) = delete;
  sidecar& operator=(const sidecar&) = delete;

  [[nodiscard]] std::uint16_t port() const;
  [[nodiscard]] std::uint16_t admin_port() const;
  /// The bootstrap token's value: every permission.
  [[nodiscard]] const std::string& admin_key() const;
  [[nodiscard]] const proxy::config& settings() const;
  [[nodiscard]] const temp_dir& dir() const;

  struct created {
    std::string id;
    std::string value;
  };
  /// Creates a token through the API (as the admin). Fails the test when the API refuses.
  created create_token(const std::string& name, const std::vector<std::string>& permissions,
                       const std::vector<std::string>& cidrs = {});

  /// Everything logged so far.
  [[nodiscard]] std::string log_text() const;
  /// Everything logged once `needle` is (or `wait` has passed): an access line is written just
  /// after its answer, which the client may read first.
  [[nodiscard]] std::string
  log_text_once(std::string_view needle,
                std::chrono::milliseconds wait = std::chrono::milliseconds(5000)) const;

  /// What the next live reload (POST /reload on the admin port) reads: `next`, with this
  /// sidecar's addresses and directories (so changing those is not what a test sees).
  void reload_with(proxy::config next);
  /// Makes the next reload fail as a broken file would, with `error`.
  void fail_reload_with(const std::string& error);

  /// Graceful stop, as on SIGTERM; returns when every thread has ended.
  void stop();

private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

/// Default settings for tests: a few threads, and short timeouts where tests wait for them.
[[nodiscard]] proxy::config test_settings();

} // namespace tokengate::test
