#pragma once

#include "store/change_feed.hpp"
#include "store/pg_connection.hpp"
#include "store/rocksdb_store.hpp"

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <thread>

namespace tokengate::store {

/// What the follower reports, for the logs.
struct follower_event {
  enum class kind {
    connected,          ///< in sync again; `staleness_ms` is how stale it had become
    disconnected,       ///< cut off; `detail` says why (once per outage)
    still_disconnected, ///< every 10 s of an outage
    snapshot,           ///< reloaded every token (`count`): new replica or pruned log
    fail_closed,        ///< cut off longer than max_staleness: every key is refused
    fail_open,          ///< back in sync: keys are checked again
  };
  kind what;
  std::string detail;
  std::int64_t staleness_ms = 0;
  std::size_t count = 0;
};

struct follower_options {
  std::chrono::milliseconds poll_interval{1000}; ///< the safety net under LISTEN/NOTIFY
  /// Change-log entries older than this are pruned (by every sidecar, hourly): a replica
  /// offline longer reloads a snapshot at its next start.
  std::chrono::seconds log_retention{7 * 24 * 3600};
  std::optional<std::chrono::milliseconds> max_staleness;
  std::function<void(const follower_event&)> on_event;
  /// Run on the follower's thread after the first successful sync (bootstrap); retried with
  /// the connection while it fails.
  std::function<result<void>()> on_first_sync;
};

/// Follows a fleet's change log into this sidecar's replica and in-memory view (the sink).
///
/// LISTEN/NOTIFY is the fast path (the payload is the seq); every (re)connection catches up by
/// seq from the one stored in the replica, and a poll every `poll_interval` catches what a lost
/// notification would miss. When the log no longer reaches back to the replica's seq (pruned),
/// or the replica belongs to another database, every token is reloaded from one consistent
/// snapshot. Reconnects with backoff (100 ms doubling to 5 s). One thread of its own.
class fleet_follower {
public:
  fleet_follower(pg_settings settings, rocksdb_store& replica, change_sink& sink,
                 follower_options options);
  ~fleet_follower();
  fleet_follower(const fleet_follower&) = delete;
  fleet_follower& operator=(const fleet_follower&) = delete;

  /// Connects, creates or upgrades the schema and catches up, on the calling thread: start-up.
  /// On failure `last_error()` says why.
  [[nodiscard]] result<void> connect_and_sync();
  /// One catch-up on the open connection (also from `on_first_sync`, on the follower's thread).
  [[nodiscard]] result<void> catch_up();
  [[nodiscard]] std::string last_error() const { return conn_.last_error(); }

  /// Starts following on a thread of its own; `first_sync_done`: the hook already ran.
  void start(bool first_sync_done);
  /// Stops and joins the thread. Idempotent.
  void stop();

  [[nodiscard]] const sync_status& status() const { return status_; }

private:
  struct position {
    std::string database_id;
    std::int64_t applied = 0;
  };
  [[nodiscard]] position stored_position() const;
  [[nodiscard]] result<void> catch_up_locked();
  [[nodiscard]] result<std::int64_t> apply_log(std::int64_t after);
  [[nodiscard]] result<void> snapshot();
  [[nodiscard]] result<std::size_t> merge_snapshot();
  [[nodiscard]] result<void> apply_changes(std::vector<replicated_change> changes,
                                           replica_batch batch);
  struct outage {
    bool reported = false;
    std::int64_t next_report = 0;
    std::chrono::milliseconds backoff{100}; ///< doubling to 5 s
  };
  [[nodiscard]] bool reconnect(outage& o);
  void run();
  [[nodiscard]] result<void> bring_up();
  void wait_for_input(std::chrono::milliseconds timeout);
  void check_staleness();
  void report(follower_event e) const;

  pg_connection conn_;
  rocksdb_store& replica_;
  change_sink& sink_;
  follower_options options_;
  sync_status status_;
  bool first_sync_done_ = false;
  bool closed_ = false;
  int wake_fd_ = -1;
  std::atomic<bool> stopping_{false};
  std::thread thread_;
};

} // namespace tokengate::store
