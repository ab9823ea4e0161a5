#pragma once

#include "proxy/config.hpp"
#include "proxy/log.hpp"
#include "proxy/route_table.hpp"
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
  const config& settings;
  const route_table& routes;
  tokenapi::authorizer& auth;
  tokenapi::api_handler& api;
  tokenapi::token_service& service;
  const tokenapi::clock& clock;
  log_sink& log;
  const store::sync_status* sync = nullptr; ///< fleet mode: readiness and staleness
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

  /// Loads the listeners' TLS certificates again (README "TLS", as on SIGHUP; the files are
  /// also watched): new handshakes use the new pair, open connections keep theirs; a pair that
  /// fails to load leaves the old one, is logged and shows in /readyz. Returns false when a
  /// pair failed (or true without TLS). Thread-safe.
  bool reload_certificates();

  /// Graceful stop: stops accepting, closes idle connections, lets requests in flight finish
  /// (for at most limits.shutdown_timeout, then closes what is left), writes the pending usage
  /// notes and returns when every thread has ended. Idempotent.
  void stop();

private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

} // namespace tokengate::proxy
