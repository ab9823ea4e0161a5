#pragma once

#include "proxy/config.hpp"
#include "proxy/log.hpp"
#include "proxy/reload.hpp"
#include "store/change_feed.hpp"
#include "tokenapi/api.hpp"
#include "tokenapi/authorizer.hpp"
#include "tokenapi/clock.hpp"
#include "tokenapi/token_service.hpp"

#include <cstdint>
#include <memory>

namespace tokengate::proxy {

/// What the server runs on; everything outlives the server.
struct server_dependencies {
  const config& settings; ///< as at start-up; reload() replaces its live part for the server
  tokenapi::authorizer& auth;
  tokenapi::api_handler& api;
  tokenapi::token_service& service;
  const tokenapi::clock& clock;
  log_sink& log;
  const store::sync_status* sync = nullptr; ///< fleet mode: readiness and staleness
  config_source reload_source = {};         ///< what reload() reads; empty: reload refuses
};

/// The sidecar's network side: the main listener (token API and proxy), the admin listener
/// (/healthz, /readyz), `threads` event loops, each with its own upstream connection pool, and
/// one thread for token API calls and background usage writes.
class server {
public:
  /// Binds both listeners and resolves the upstream. Throws std::runtime_error with one clear
  /// line (e.g. "cannot listen on 127.0.0.1:8080: Address already in use").
  explicit server(const server_dependencies& deps);
  ~server();
  server(const server&) = delete;
  server& operator=(const server&) = delete;

  /// The bound ports (useful when the configuration asked for port 0).
  [[nodiscard]] std::uint16_t port() const;
  [[nodiscard]] std::uint16_t admin_port() const;

  /// Starts the event loops; returns at once.
  void start();

  /// Live reload (SIGHUP, or POST /reload on the admin listener): reads the configuration
  /// from `reload_source` and, when it is valid, applies its live settings (routes,
  /// default_route, trusted_proxies, limits, log_level) to every request that starts from now
  /// on; requests in flight finish with the settings they started with. A configuration that
  /// fails to load changes nothing. Logs and counts the outcome. Thread-safe.
  reload_report reload();

  /// Graceful stop: stops accepting, closes idle connections, lets requests in flight finish
  /// (for at most limits.shutdown_timeout, then closes what is left), writes the pending usage
  /// notes and returns when every thread has ended. Idempotent.
  void stop();

private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

} // namespace tokengate::proxy
