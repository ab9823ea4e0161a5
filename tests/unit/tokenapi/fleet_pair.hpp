#pragma once

// Two sidecars of one fleet for the token service's fleet tests: A in fleet mode over a replica
// whose writes (the token service's, or its follower's) can be made to fail, and B writing
// straight to the shared database.
#include "store/fleet_follower.hpp"
#include "store/pg_store.hpp"
#include "tests/unit/store/failing_follower_replica.hpp"
#include "tests/unit/store/store_fixtures.hpp"
#include "tests/unit/tokenapi/api_fixture.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <mutex>
#include <thread>

namespace tokengate::test {

/// The replica as fleet mode's store reaches it; its writes fail while `failing` is set (a full
/// or broken disk). Reads, and the follower's own writes, go to the real store.
class failing_replica final : public store::token_store {
public:
  explicit failing_replica(store::rocksdb_store& real) : real_(real) {}

  bool failing = false;

  store::result<std::optional<store::token_record>> get(std::string_view id) const override {
    return real_.get(id);
  }
  store::result<std::optional<store::token_record>> find(const store::digest& d) const override {
    return real_.find(d);
  }
  store::result<void> put(const store::token_record& r, std::string_view marker) override {
    if (failing)
      return store::errc::io_error;
    return real_.put(r, marker);
  }
  store::result<void> put_many(std::span<const store::token_record> records) override {
    if (failing)
      return store::errc::io_error;
    return real_.put_many(records);
  }
  store::result<bool> erase(std::string_view id) override {
    if (failing)
      return store::errc::io_error;
    return real_.erase(id);
  }
  store::result<void> replace(const store::token_record& record,
                              const store::token_record& expected) override {
    if (failing)
      return store::errc::io_error;
    return real_.replace(record, expected);
  }
  store::result<void> erase_if(const store::token_record& expected) override {
    if (failing)
      return store::errc::io_error;
    return real_.erase_if(expected);
  }
  store::result<std::vector<store::token_record>> scan(std::string_view after,
                                                       std::size_t limit) const override {
    return real_.scan(after, limit);
  }
  store::result<void> write_last_used(std::span<const store::usage> notes) override {
    return real_.write_last_used(notes);
  }
  store::result<bool> has_marker(std::string_view marker) const override {
    return real_.has_marker(marker);
  }
  store::result<void> flush() override { return real_.flush(); }

private:
  store::rocksdb_store& real_;
};

/// Sidecar A (fleet mode, replica that may fail, follower not on a thread: `sync` catches up)
/// and sidecar B, whose writes go straight to the shared database.
struct fleet_pair {
  pg_fixture db;
  temp_dir dir;
  std::unique_ptr<store::rocksdb_store> replica =
      store::rocksdb_store::open(dir / "replica").value();
  failing_replica wrapper{*replica};
  failing_follower_replica followed{*replica};
  store::pg_store a_primary{{pg_cluster::shared().url(db.database), {}, std::chrono::seconds(5)}};
  store::fleet_store a_store{a_primary, wrapper};
  tokenapi::manual_clock clock{t0};
  restarted a{a_store, clock};
  restarted b{db.store, clock};
  std::mutex events_mutex;
  std::vector<store::follower_event::kind> events; ///< what the follower reported, in order
  std::vector<std::string> details;
  store::fleet_follower follower{
      {pg_cluster::shared().url(db.database), {}, std::chrono::seconds(5)},
      followed,
      a.service,
      options()};
  std::shared_ptr<tokenapi::auth_entry> root = [] {
    tokenapi::token t;
    t.id = "test-root";
    t.permissions = tokenapi::permission_set::all();
    return tokenapi::auth_entry::from(t);
  }();

  std::vector<std::string> reported; ///< ids whose replica write failed, as the log hears
  /// Writes whose COMMIT reply A lost: the id, and whether found committed, as the log hears.
  std::vector<std::pair<std::string, bool>> lost_commits;

  fleet_pair() {
    a_store.on_replica_failure([this](std::string_view id, boost::system::error_code why) {
      CHECK(why == store::errc::io_error);
      reported.emplace_back(id);
    });
    a_primary.on_lost_commit(
        [this](std::string_view id, bool applied) { lost_commits.emplace_back(id, applied); });
    REQUIRE(follower.connect_and_sync());
  }

  store::follower_options options() {
    store::follower_options o;
    o.poll_interval = std::chrono::milliseconds(50);
    o.on_event = [this](const store::follower_event& e) {
      std::lock_guard lock(events_mutex);
      events.push_back(e.what);
      details.push_back(e.detail);
    };
    return o;
  }

  /// A catch-up of A's follower: one page of the change log.
  void sync() { REQUIRE(follower.catch_up()); }
  /// A catch-up of A's follower, then B loads the database.
  void sync_both() {
    sync();
    REQUIRE(b.service.load());
  }
  /// Creates a token named `name` through A; it must succeed.
  auto create_on_a(std::string name) {
    auto made = a.service.create(*root, spec(std::move(name)));
    REQUIRE(made);
    return made;
  }
  /// Waits (a few seconds at most) until the follower has reported `what`.
  bool reported_event(store::follower_event::kind what) {
    for (int i = 0; i < 500; ++i) {
      {
        std::lock_guard lock(events_mutex);
        if (std::find(events.begin(), events.end(), what) != events.end())
          return true;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return false;
  }
  /// How often the follower has reported `what` so far.
  std::size_t reported_count(store::follower_event::kind what) {
    std::lock_guard lock(events_mutex);
    return static_cast<std::size_t>(std::count(events.begin(), events.end(), what));
  }
  /// Prunes the whole change log, as after a week away: A's follower reloads a snapshot.
  void prune_log() {
    store::pg_connection admin(
        {pg_cluster::shared().url(db.database), {}, std::chrono::seconds(5)});
    REQUIRE(admin.connect());
    REQUIRE(store::prune_log(admin, std::chrono::seconds(0)));
  }
  /// The seq of the change log A's replica holds itself applied up to.
  std::string applied_seq() const { return replica->read_meta("applied_seq").value().value(); }

  static tokenapi::token_spec spec(std::string name) {
    tokenapi::token_spec s;
    s.name = std::move(name);
    s.permissions.insert(tokenapi::permission::AlertRead);
    return s;
  }
  /// Whether sidecar `s` lets `key` through.
  bool accepted(restarted& s, const std::string& key) const {
    return s.auth.decide(key, ip("127.0.0.1"), {}, clock.now()).allowed();
  }
};

} // namespace tokengate::test
