// The follower of a fleet's change log, against a real PostgreSQL and a real RocksDB replica:
// catch-up by seq, the NOTIFY fast path, pruning and snapshot reloads.
#include "store/fleet_follower.hpp"
#include "tests/unit/store/failing_follower_replica.hpp"
#include "tests/unit/store/store_fixtures.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <cstring>
#include <map>
#include <mutex>
#include <thread>

using namespace tokengate;
using test::digest_of;
using test::pg_cluster;
using test::record;

namespace {

// What the domain would see: the last state published per id.
struct recording_sink final : store::change_sink {
  void exclusive(const std::function<void()>& sync) override {
    std::lock_guard lock(exclusive_mutex);
    sync();
  }
  void apply(const store::replicated_change& c) override {
    std::lock_guard lock(mutex);
    seen[c.id] = c.current ? std::optional<std::string>(c.current->payload) : std::nullopt;
    if (on_apply)
      on_apply(c);
  }
  void forget(std::span<const std::string> ids) override {
    std::lock_guard lock(mutex);
    for (const auto& id : ids)
      seen[id] = std::nullopt;
  }
  void forget_range(const store::id_range& range) override {
    std::lock_guard lock(mutex);
    for (auto& [id, state] : seen)
      if (range.contains(id))
        state = std::nullopt;
  }
  void fail_closed(bool on) override { closed = on; }
  void fresh_until(std::int64_t unix_ms) override { fresh = unix_ms; }

  std::optional<std::optional<std::string>> state(const std::string& id) {
    std::lock_guard lock(mutex);
    auto it = seen.find(id);
    return it == seen.end() ? std::nullopt : std::optional(it->second);
  }

  std::function<void(const store::replicated_change&)> on_apply;
  std::mutex exclusive_mutex, mutex;
  std::map<std::string, std::optional<std::string>> seen;
  std::atomic<bool> closed{false};
  std::atomic<std::int64_t> fresh{0};
};

struct follower_fixture {
  test::pg_fixture db; // the writer's database ("another sidecar")
  test::temp_dir dir;
  std::unique_ptr<store::rocksdb_store> replica =
      store::rocksdb_store::open(dir / "replica").value();
  recording_sink sink;
  std::vector<store::follower_event> events;

  store::pg_settings settings(const std::string& database) const {
    return {pg_cluster::shared().url(database), {}, std::chrono::seconds(5)};
  }
  std::unique_ptr<store::fleet_follower> follower(const std::string& database) {
    store::follower_options o;
    o.on_event = [this](const store::follower_event& e) { events.push_back(e); };
    return std::make_unique<store::fleet_follower>(settings(database), *replica, sink, o);
  }
  bool replica_has(const std::string& id) { return replica->get(id).value().has_value(); }
  /// Prunes the whole change log: the next catch-up is a snapshot.
  void prune_log() {
    store::pg_connection admin(settings(db.database));
    REQUIRE(admin.connect());
    REQUIRE(store::prune_log(admin, std::chrono::seconds(0)));
  }
  /// 25,000 tokens id000000..id024999 (three snapshot pages of 10,000), straight in SQL.
  void seed_three_pages() {
    (void)pg_cluster::shared().query(
        "INSERT INTO tokengate_tokens (id, digest, payload) SELECT 'id' || lpad(i::text, 6, "
        "'0'), sha256(i::text::bytea), 'p' FROM generate_series(0, 24999) AS i",
        db.database);
  }
};

} // namespace

TEST_CASE("the follower brings the fleet's writes into the replica and the sink, keeping the "
          "seq",
          "[store][fleet]") {
  follower_fixture f;
  REQUIRE(f.db.store.put(record("a", 1, "A")));
  REQUIRE(f.db.store.put(record("b", 2, "B")));
  REQUIRE(f.db.store.erase("a").value());

  auto follower = f.follower(f.db.database);
  CHECK_FALSE(follower->status().ever_synced());
  REQUIRE(follower->connect_and_sync());
  CHECK(follower->status().ever_synced());
  CHECK_FALSE(f.replica_has("a"));
  CHECK(f.replica->find(digest_of(2)).value()->payload == "B");
  CHECK(f.replica->read_meta("applied_seq").value() == "3");

  // On its thread: a notification brings the next write at once.
  follower->start(true);
  REQUIRE(f.db.store.put(record("c", 3, "C")));
  REQUIRE(f.db.store.put(record("b", 4, "B2")));
  for (int i = 0; i < 200 && f.sink.state("b") != std::optional<std::string>("B2"); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  CHECK(f.sink.state("c") == std::optional<std::string>("C"));
  CHECK(f.sink.state("b") == std::optional<std::string>("B2"));
  CHECK_FALSE(f.replica->find(digest_of(2)).value().has_value()); // the rotated digest is gone
  CHECK(follower->status().applied_seq() == 5);
  follower->stop();
  CHECK(f.replica->read_meta("applied_seq").value() == "5");
}

TEST_CASE("a replica behind a pruned log reloads a snapshot, dropping what the database lost",
          "[store][fleet]") {
  follower_fixture f;
  REQUIRE(f.db.store.put(record("a", 1, "A")));
  REQUIRE(f.db.store.put(record("b", 2, "B")));
  REQUIRE(f.follower(f.db.database)->connect_and_sync());
  REQUIRE(f.replica_has("a"));

  // While this sidecar is away: changes, then the log is pruned past them.
  REQUIRE(f.db.store.erase("a").value());
  REQUIRE(f.db.store.put(record("c", 3, "C")));
  store::pg_connection admin(f.settings(f.db.database));
  REQUIRE(admin.connect());
  CHECK(store::prune_log(admin, std::chrono::seconds(0)).value() == 4);
  CHECK(pg_cluster::shared().query("SELECT pruned_below FROM tokengate_meta", f.db.database) ==
        "5");
  CHECK(store::prune_log(admin, std::chrono::seconds(0)).value() == 0);

  REQUIRE(f.follower(f.db.database)->connect_and_sync());
  CHECK_FALSE(f.replica_has("a"));
  CHECK(f.replica_has("b"));
  CHECK(f.replica_has("c"));
  CHECK(f.sink.state("a") == std::optional<std::optional<std::string>>(std::in_place));
  CHECK(f.sink.state("c") == std::optional<std::string>("C"));
  REQUIRE_FALSE(f.events.empty());
  CHECK(f.events.back().what == store::follower_event::kind::snapshot);
  CHECK(f.events.back().count == 2);
  CHECK(f.replica->read_meta("applied_seq").value() == "4");
}

TEST_CASE("a replica of another database is replaced by a snapshot of this one", "[store][fleet]") {
  follower_fixture f;
  REQUIRE(f.db.store.put(record("old", 1)));
  REQUIRE(f.follower(f.db.database)->connect_and_sync());
  REQUIRE(f.replica_has("old"));

  test::pg_fixture other;
  REQUIRE(other.store.put(record("new", 2)));
  REQUIRE(f.follower(other.database)->connect_and_sync());
  CHECK_FALSE(f.replica_has("old"));
  CHECK(f.replica_has("new"));
}

TEST_CASE("a snapshot larger than a page merges page by page", "[store][fleet]") {
  follower_fixture f;
  f.seed_three_pages();
  // The replica starts with every third id (with other contents), and one the database lacks.
  std::vector<store::token_record> some;
  for (int i = 0; i < 25'000; i += 3) {
    char id[16];
    std::snprintf(id, sizeof id, "id%06d", i);
    auto r = record(id, 0);
    std::memcpy(r.value_digest.data(), &i, sizeof i);
    some.push_back(std::move(r));
  }
  some.push_back(record("zz-stray", 7));
  REQUIRE(f.replica->put_many(some));

  REQUIRE(f.follower(f.db.database)->connect_and_sync());
  auto all = f.replica->scan("", 30'000).value();
  CHECK(all.size() == 25'000);
  CHECK(std::all_of(all.begin(), all.end(), [](const auto& r) { return r.payload == "p"; }));
  CHECK_FALSE(f.replica_has("zz-stray"));
}

TEST_CASE("a replica already holding more than a page of tokens keeps them through a snapshot",
          "[store][fleet]") {
  follower_fixture f;
  f.seed_three_pages(); // and a replica synced with them
  auto follower = f.follower(f.db.database);
  REQUIRE(follower->connect_and_sync());
  REQUIRE(f.replica->scan("", 30'000).value().size() == 25'000);

  // One delete, then the log is pruned past it: the next catch-up is a snapshot, each of whose
  // pages the replica already holds (more than a page of its ids from the page's first on).
  REQUIRE(f.db.store.erase("id017000").value());
  f.prune_log();
  REQUIRE(follower->catch_up());
  CHECK(f.events.back().what == store::follower_event::kind::snapshot);
  CHECK(f.replica->scan("", 30'000).value().size() == 24'999);
  CHECK_FALSE(f.replica_has("id017000"));
  CHECK(f.sink.state("id017000") == std::optional<std::optional<std::string>>(std::in_place));
  for (const auto* id : {"id000000", "id009999", "id010000", "id020000", "id024999"}) {
    CHECK(f.replica_has(id));
    CHECK(f.sink.state(id) == std::optional<std::string>("p"));
  }
}

TEST_CASE("a snapshot page whose replica range cannot be read drops that range from the sink, "
          "until a snapshot publishes it again",
          "[store][fleet]") {
  follower_fixture f;
  f.seed_three_pages();
  test::failing_follower_replica followed{*f.replica};
  store::fleet_follower follower(f.settings(f.db.database), followed, f.sink, {});
  REQUIRE(follower.connect_and_sync());
  REQUIRE(f.sink.state("id015000") == std::optional<std::string>("p"));

  // Deleted elsewhere, one in each page; then the log is pruned: the next catch-up is a
  // snapshot, whose first page id000000..id010000 settles and whose second, id010001..id020001,
  // the replica cannot read.
  for (const auto* id : {"id000005", "id012345", "id022222"})
    REQUIRE(f.db.store.erase(id).value());
  f.prune_log();
  f.sink.on_apply = [&](const store::replicated_change& c) {
    if (c.id == "id000005")
      followed.failing_reads = true;
  };
  CHECK_FALSE(follower.catch_up());
  const auto dropped = std::optional<std::optional<std::string>>(std::in_place);
  const auto held = std::optional<std::string>("p");
  CHECK(f.sink.state("id000005") == dropped);
  CHECK(f.sink.state("id010000") == held);
  CHECK(f.sink.state("id010001") == dropped);
  CHECK(f.sink.state("id012345") == dropped);
  CHECK(f.sink.state("id020001") == dropped);
  CHECK(f.sink.state("id020002") == held); // not read yet
  CHECK_FALSE(f.replica_has("id000005"));
  CHECK(f.replica_has("id012345"));

  f.sink.on_apply = nullptr;
  followed.failing_reads = false;
  REQUIRE(follower.catch_up());
  CHECK(f.sink.state("id010001") == held);
  CHECK(f.sink.state("id015000") == held);
  CHECK(f.sink.state("id020001") == held);
  for (const auto* id : {"id000005", "id012345", "id022222"}) {
    CHECK(f.sink.state(id) == dropped);
    CHECK_FALSE(f.replica_has(id));
  }
  CHECK(f.replica->scan("", 30'000).value().size() == 24'997);
}

TEST_CASE("last-use notes the database missed during an outage reach it afterwards",
          "[store][fleet]") {
  test::pg_cluster own;
  store::pg_store primary({own.url(), {}, std::chrono::seconds(2)});
  REQUIRE(primary.migrate());
  test::temp_dir dir;
  auto replica = store::rocksdb_store::open(dir / "replica").value();
  store::fleet_store fleet(primary, *replica);
  REQUIRE(fleet.put(record("a", 1)));

  own.kill();
  std::vector<store::usage> during{{"a", 1'700'000'000}};
  CHECK(fleet.write_last_used(during)); // the replica took it
  CHECK(fleet.get("a").value()->last_used == 1'700'000'000);
  CHECK_FALSE(fleet.put(record("b", 2))); // writes fail while it is down

  own.start();
  std::vector<store::usage> after{{"a", 1'600'000'000}}; // older: the later time wins
  CHECK(fleet.write_last_used(after));
  CHECK(own.query("SELECT last_used FROM tokengate_tokens WHERE id = 'a'", "postgres") ==
        "1700000000");
  CHECK(own.query("SELECT count(*) FROM tokengate_tokens", "postgres") == "1");

  // The notes kept for the database are bounded (100,000 ids): past that they are dropped.
  own.kill();
  std::vector<store::usage> flood;
  for (int i = 0; i < 100'000; ++i)
    flood.push_back({"x" + std::to_string(i), 5});
  flood.push_back({"a", 1'800'000'000});
  CHECK(fleet.write_last_used(flood));
  CHECK(fleet.get("a").value()->last_used == 1'800'000'000); // the replica keeps its own
  own.start();
  CHECK(fleet.write_last_used({}));
  CHECK(own.query("SELECT last_used FROM tokengate_tokens WHERE id = 'a'", "postgres") ==
        "1700000000");
}

TEST_CASE("a change whose notification was lost is caught by the poll", "[store][fleet]") {
  follower_fixture f;
  auto follower = f.follower(f.db.database);
  REQUIRE(follower->connect_and_sync());
  follower->start(true);
  // A change written as a sidecar would, but with no NOTIFY.
  (void)pg_cluster::shared().query(
      "BEGIN; INSERT INTO tokengate_tokens VALUES ('quiet', sha256('q'), 'Q', NULL);"
      "UPDATE tokengate_meta SET last_seq = last_seq + 1;"
      "INSERT INTO tokengate_changes (seq, id) SELECT last_seq, 'quiet' FROM tokengate_meta;"
      "COMMIT",
      f.db.database);
  for (int i = 0; i < 500 && !f.replica_has("quiet"); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  CHECK(f.replica_has("quiet"));
  CHECK(f.sink.state("quiet") == std::optional<std::string>("Q"));
  follower->stop();
}

TEST_CASE("a row whose digest is not 32 bytes serves no key and stops no other change",
          "[store][fleet]") {
  follower_fixture f;
  REQUIRE(f.db.store.put(record("a", 1, "A")));
  REQUIRE(f.db.store.put(record("b", 2, "B")));
  auto follower = f.follower(f.db.database);
  REQUIRE(follower->connect_and_sync());
  REQUIRE(f.replica_has("a"));
  // Tampered with around the API (the column does not check a digest's length), logged as a
  // sidecar logs a write; then an ordinary change behind it.
  (void)pg_cluster::shared().query(
      "BEGIN; UPDATE tokengate_tokens SET digest = '\\x0102' WHERE id = 'a';"
      "UPDATE tokengate_meta SET last_seq = last_seq + 1;"
      "INSERT INTO tokengate_changes (seq, id) SELECT last_seq, 'a' FROM tokengate_meta;"
      "COMMIT",
      f.db.database);
  REQUIRE(f.db.store.erase("b").value());
  SECTION("in the log") {
    REQUIRE(follower->catch_up());
    const auto dropped = [&](const std::string& id) {
      const auto state = f.sink.state(id);
      return state && !*state; // published, as gone
    };
    CHECK(dropped("a"));
    CHECK_FALSE(f.replica_has("a"));
    CHECK_FALSE(f.replica->find(digest_of(1)).value().has_value()); // its key is refused
    CHECK(dropped("b"));
    CHECK_FALSE(f.replica_has("b")); // the change behind it arrived
  }
  SECTION("in a snapshot") {
    f.prune_log();
    REQUIRE(f.db.store.put(record("c", 3, "C")));
    REQUIRE(follower->catch_up());
    CHECK_FALSE(f.replica_has("a"));
    CHECK_FALSE(f.replica_has("b"));
    CHECK(f.replica_has("c"));
  }
}

TEST_CASE("a snapshot page of rows held wrong only leaves them out", "[store][fleet]") {
  follower_fixture f;
  f.seed_three_pages();
  // The second page of 10,000, whole: a page that yields no token.
  (void)pg_cluster::shared().query(
      "UPDATE tokengate_tokens SET digest = substring(digest from 1 for 16) WHERE id >= "
      "'id010000' AND id < 'id020000'",
      f.db.database);
  REQUIRE(f.follower(f.db.database)->connect_and_sync());
  auto all = f.replica->scan("", 30'000).value();
  CHECK(all.size() == 15'000);
  CHECK_FALSE(f.replica_has("id010000"));
  CHECK(f.replica_has("id020000"));
}

TEST_CASE("a view loaded from another database's replica serves none of its keys, even while "
          "the snapshot that replaces it fails",
          "[store][fleet]") {
  follower_fixture f;
  test::pg_fixture other; // the database the replica was made from
  REQUIRE(other.store.put(record("zz-other", 1, "O")));
  REQUIRE(f.follower(other.database)->connect_and_sync());
  REQUIRE(f.sink.state("zz-other") == std::optional<std::string>("O"));

  // Now this database, of three snapshot pages; the replica cannot read its first page's range.
  f.seed_three_pages();
  test::failing_follower_replica followed{*f.replica};
  followed.failing_reads = true;
  store::fleet_follower follower(f.settings(f.db.database), followed, f.sink, {});
  CHECK_FALSE(follower.connect_and_sync());
  const auto dropped = std::optional<std::optional<std::string>>(std::in_place);
  CHECK(f.sink.state("zz-other") == dropped); // beyond the failed page: dropped all the same

  followed.failing_reads = false;
  REQUIRE(follower.catch_up());
  CHECK(f.sink.state("id015000") == std::optional<std::string>("p"));
  CHECK(f.sink.state("zz-other") == dropped);
  CHECK_FALSE(f.replica_has("zz-other"));
}

TEST_CASE("a view loaded from a replica whose snapshot was cut short serves none of its keys "
          "until a snapshot completes",
          "[store][fleet]") {
  follower_fixture f;
  test::pg_fixture other;
  REQUIRE(other.store.put(record("zz-other", 1, "O")));
  REQUIRE(f.follower(other.database)->connect_and_sync());
  // A snapshot of this database began (its first page marks the replica) and the sidecar
  // stopped before it ended: the replica may hold any mix of the two databases' tokens.
  REQUIRE(f.replica->note_meta("database_id", ""));
  f.seed_three_pages();
  test::failing_follower_replica followed{*f.replica};
  followed.failing_reads = true;
  store::fleet_follower follower(f.settings(f.db.database), followed, f.sink, {});
  CHECK_FALSE(follower.connect_and_sync());
  CHECK(f.sink.state("zz-other") == std::optional<std::optional<std::string>>(std::in_place));
}
