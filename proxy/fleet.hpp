#pragma once

#include "proxy/config.hpp"
#include "proxy/log.hpp"
#include "store/fleet_follower.hpp"
#include "store/fleet_store.hpp"
#include "store/rocksdb_store.hpp"
#include "tokenapi/token_service.hpp"

#include <functional>
#include <memory>

namespace tokengate::proxy {

/// Fleet mode's wiring: the database as the source of truth, the local store as its replica,
/// the follower feeding the token service, and what they report in the logs.
class fleet {
public:
  /// Reads `database_password_file`; throws std::runtime_error (one line, no secret) when it
  /// cannot, or when `database_url` is not a connection string libpq accepts.
  fleet(const config& settings, store::rocksdb_store& replica, log_sink& log);
  ~fleet();
  fleet(const fleet&) = delete;
  fleet& operator=(const fleet&) = delete;

  /// The store the token service writes through: database first, then the replica.
  [[nodiscard]] store::token_store& store() { return store_; }
  [[nodiscard]] const store::sync_status& status() const { return follower_->status(); }

  /// Tries the database once (schema, catch-up, then `bootstrap` under the fleet-wide bootstrap
  /// lock) and follows it from then on. When the database cannot be reached, the sidecar serves
  /// from its replica (or is not ready without one) and all of that happens on reconnection.
  /// Exceptions of `bootstrap` at this first try propagate (a bad bootstrap file stops the start).
  void start(tokenapi::token_service& service, std::function<void()> bootstrap,
             std::chrono::milliseconds poll_interval);
  void stop();

private:
  [[nodiscard]] store::result<void> run_bootstrap(bool at_start);
  void report(const store::follower_event& e);

  store::pg_settings settings_;
  store::rocksdb_store& replica_;
  log_sink& log_;
  store::pg_store primary_;
  store::fleet_store store_;
  std::function<void()> bootstrap_;
  std::unique_ptr<store::fleet_follower> follower_;
  std::optional<std::chrono::milliseconds> max_staleness_;
};

/// `tokengate migrate --data-dir DIR --database-url URL [--database-password-file FILE]`:
/// copies a standalone store's tokens into the database. Returns the exit status.
[[nodiscard]] int run_migrate(const std::vector<std::string_view>& args, const env_lookup& env);

} // namespace tokengate::proxy
