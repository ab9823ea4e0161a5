#pragma once

#include "store/change_feed.hpp"
#include "store/pg_connection.hpp"
#include "store/replica_merge.hpp"
#include "store/replica_store.hpp"

#include <chrono>
#include <functional>
#include <optional>
#include <set>
#include <span>
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
    /// The replica did not take a page of changes (`detail`: the engine's reason), or could not
    /// read what it held of them: the changed tokens are refused here until it does. Once, then
    /// every 10 s while it lasts.
    replica_write_failed,
    replica_read_failed,
    replica_recovered, ///< the replica takes the changes again; in sync
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
///
/// The sink only ever holds a part of what the replica holds: when the replica cannot take (or
/// read) a page of the log, the page's tokens are dropped from the sink, the seq does not move
/// on, and the page is read again with the same backoff (the replica resumed before each try).
/// Likewise a page of a snapshot: its changed tokens are dropped when the replica does not take
/// them, and every token of the sink in its range of ids when the replica cannot read what it
/// holds of that range; the snapshot is tried again until one completes, and publishes those
/// tokens again, and those a failed page of the log dropped (the log pruned meanwhile).
class fleet_follower {
public:
  fleet_follower(pg_settings settings, replica_store& replica, change_sink& sink,
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
  /// The database's change log: whose it is, its last seq, and where pruning left it.
  struct log_state {
    std::string database_id;
    std::int64_t last_seq = 0;
    std::int64_t pruned_below = 0;
  };
  [[nodiscard]] result<log_state> read_state();
  [[nodiscard]] result<void> catch_up_locked();
  [[nodiscard]] result<std::int64_t> apply_log(std::int64_t after);
  [[nodiscard]] result<void> snapshot();
  [[nodiscard]] result<std::size_t> merge_snapshot();
  [[nodiscard]] result<void> settle_page(snapshot_page page, const id_range& range, bool first);
  [[nodiscard]] result<void> apply_changes(std::vector<replicated_change> changes,
                                           replica_batch batch);
  void withhold(const std::vector<replicated_change>& changes,
                std::span<const std::string> unknown);
  struct outage {
    bool reported = false;
    std::int64_t next_report = 0;
    std::chrono::milliseconds backoff{100}; ///< doubling to 5 s
    bool replica = false;                   ///< what was reported: the replica's failure
  };
  void report_failure(outage& o, boost::system::error_code why);
  [[nodiscard]] bool reconnect(outage& o);
  void run();
  [[nodiscard]] result<void> bring_up();
  void wait_for_input(std::chrono::milliseconds timeout);
  void check_staleness();
  void report(follower_event e) const;

  pg_connection conn_;
  replica_store& replica_;
  change_sink& sink_;
  follower_options options_;
  sync_status status_;
  bool first_sync_done_ = false;
  bool closed_ = false;
  /// Set when the last sync failed at the replica, not at the database.
  std::optional<follower_event::kind> replica_failure_;
  /// The ids a failed snapshot dropped from the sink: until a snapshot completes (the next
  /// catch-up takes one), its pages publish them again.
  std::optional<id_range> dropped_;
  /// The database whose tokens the view holds: the replica's at start, then the followed one.
  std::string sink_database_;
  /// The ids a failed page (of the log or a snapshot) withheld from the sink although the
  /// replica may hold them as the database does: the page read again publishes them, or else
  /// the snapshot that replaces it (the log pruned meanwhile) must.
  std::set<std::string, std::less<>> withheld_;
  int wake_fd_ = -1;
  std::atomic<bool> stopping_{false};
  std::thread thread_;
};

} // namespace tokengate::store
