#pragma once

#include "store/pg_store.hpp"

#include <functional>
#include <map>
#include <mutex>

namespace tokengate::store {

/// A sidecar's token store in fleet mode: PostgreSQL is the source of truth, the local RocksDB
/// store its replica.
///
/// Writes commit to PostgreSQL first (failing with `unavailable` when it cannot be reached),
/// then go to the replica at once, so the sidecar that took a write reads it back. When the
/// replica fails to take a committed write, the write stands and fails with `replica_behind`:
/// the replica still holds the token as it was (or not at all) until the follower applies the
/// change from the log, and the caller's in-memory view must follow the replica, not the write
/// (the follower finds what to drop from that view by the digest the replica held). Reads come from
/// the replica: they keep working while PostgreSQL is down. The follower (fleet_follower.hpp)
/// brings the other sidecars' changes into the replica. Thread-safe.
class fleet_store final : public token_store {
public:
  /// `replica`: the sidecar's RocksDB store (any store in tests, e.g. one whose writes fail).
  fleet_store(pg_store& primary, token_store& replica) : primary_(primary), replica_(replica) {}

  result<std::optional<token_record>> get(std::string_view id) const override {
    return replica_.get(id);
  }
  result<std::optional<token_record>> find(const digest& d) const override {
    return replica_.find(d);
  }
  result<std::vector<token_record>> scan(std::string_view after_id,
                                         std::size_t limit) const override {
    return replica_.scan(after_id, limit);
  }
  result<void> put(const token_record& record, std::string_view marker = {}) override;
  result<void> put_many(std::span<const token_record> records) override;
  result<bool> erase(std::string_view id) override;
  /// Conditional in the database, which decides; the replica then takes the write as `put`
  /// does. The caller's expectation comes from the replica, which may lag: see `refresh`.
  result<void> replace(const token_record& record, const token_record& expected) override;
  result<void> erase_if(const token_record& expected) override;
  /// Copies the database's record (or its absence) into the replica at once, ahead of the
  /// follower, and returns what the replica held before. `unavailable` when the database
  /// cannot be reached. The caller holds off the follower (change_sink::exclusive), as for its
  /// own writes.
  result<std::optional<replicated_change>> refresh(std::string_view id) override;
  /// Both: the replica's for this sidecar, the database's for the fleet (one statement). Notes
  /// the database could not take are kept (the latest per id) and sent with the next batch;
  /// only the replica's failure is reported.
  result<void> write_last_used(std::span<const usage> notes) override;
  /// The database's answer; the replica's when the database cannot be reached.
  result<bool> has_marker(std::string_view marker) const override;
  result<void> flush() override { return replica_.flush(); }

  /// Told (the token's id, empty for `put_many`, and the replica's error) when the replica fails
  /// to take a write the database committed: for the log. Set before the store is used.
  void on_replica_failure(std::function<void(std::string_view, boost::system::error_code)> hook) {
    on_replica_failure_ = std::move(hook);
  }

private:
  [[nodiscard]] boost::system::error_code behind(std::string_view id,
                                                 boost::system::error_code why) const;

  pg_store& primary_;
  token_store& replica_;
  std::mutex pending_mutex_;
  std::map<std::string, std::int64_t> pending_; ///< last-use notes the database has not taken
  std::function<void(std::string_view, boost::system::error_code)> on_replica_failure_;
};

} // namespace tokengate::store
