// Conditional writes (optimistic concurrency): a change is written only over the record it was
// read from. The contract runs against all four stores; then two PostgreSQL sessions (two
// sidecars) and fleet mode's replica that lags the database.
#include "tests/unit/store/store_fixtures.hpp"

#include <catch2/catch.hpp>

#include <functional>
#include <thread>

using namespace tokengate;
using test::digest_of;
using test::record;

namespace {

store::token_record read(store::token_store& s, std::string_view id) {
  auto r = s.get(id);
  REQUIRE(r);
  REQUIRE(r->has_value());
  return **r;
}

bool is_stale(const store::result<void>& r) { return !r && r.error() == store::errc::stale; }

} // namespace

TEMPLATE_TEST_CASE("a conditional write over a fresh read is taken, over a stale one refused",
                   "[store][conditional]", test::memory_fixture, test::rocksdb_fixture,
                   test::pg_fixture, test::fleet_fixture) {
  TestType f;
  REQUIRE(f.store.put(record("a1", 1, "v1")));
  const auto first = read(f.store, "a1");
  std::vector<store::usage> notes{{"a1", 1'700'000'000}};
  REQUIRE(f.store.write_last_used(notes)); // last use is not part of what is compared

  REQUIRE(f.store.replace(record("a1", 2, "v2"), first));
  CHECK(read(f.store, "a1").payload == "v2");
  CHECK(f.store.find(digest_of(2)).value().has_value());
  CHECK_FALSE(f.store.find(digest_of(1)).value().has_value());

  // Written over the first read again: refused, nothing changed.
  CHECK(is_stale(f.store.replace(record("a1", 3, "v3"), first)));
  // Same digest, other payload bytes: refused too.
  CHECK(is_stale(f.store.replace(record("a1", 3, "v3"), record("a1", 2, "v2 "))));
  // Same payload, other digest (a rotation elsewhere that left the payload's bytes alone):
  // refused too.
  CHECK(is_stale(f.store.replace(record("a1", 3, "v3"), record("a1", 9, "v2"))));
  CHECK(read(f.store, "a1").payload == "v2");
  CHECK(read(f.store, "a1").value_digest == digest_of(2));
  CHECK_FALSE(f.store.find(digest_of(3)).value().has_value());

  // Over a record that is gone, or never was: refused, nothing created.
  CHECK(is_stale(f.store.replace(record("zz", 4, "v4"), record("zz", 4, "v4"))));
  CHECK_FALSE(f.store.get("zz").value().has_value());
  REQUIRE(f.store.erase("a1").value());
  CHECK(is_stale(f.store.replace(record("a1", 5, "v5"), record("a1", 2, "v2"))));
  CHECK_FALSE(f.store.get("a1").value().has_value());
  CHECK(f.store.scan("", 10).value().empty());
}

TEMPLATE_TEST_CASE("a conditional erase removes only the record as it was read",
                   "[store][conditional]", test::memory_fixture, test::rocksdb_fixture,
                   test::pg_fixture, test::fleet_fixture) {
  TestType f;
  REQUIRE(f.store.put(record("a1", 1, "v1")));
  const auto first = read(f.store, "a1");
  REQUIRE(f.store.put(record("a1", 2, "v2"))); // changed since `first` was read

  CHECK(is_stale(f.store.erase_if(first)));
  CHECK(read(f.store, "a1").payload == "v2");
  // Only the digest differs from what is stored, or only the payload: refused either way.
  CHECK(is_stale(f.store.erase_if(record("a1", 9, "v2"))));
  CHECK(is_stale(f.store.erase_if(record("a1", 2, "v1"))));
  CHECK(read(f.store, "a1").payload == "v2");
  CHECK(f.store.find(digest_of(2)).value().has_value());

  REQUIRE(f.store.erase_if(read(f.store, "a1")));
  CHECK_FALSE(f.store.get("a1").value().has_value());
  CHECK_FALSE(f.store.find(digest_of(2)).value().has_value());
  CHECK(is_stale(f.store.erase_if(record("a1", 2, "v2")))); // gone already
}

TEST_CASE("rocksdb: a conditional write is durable and checked against what is on disk",
          "[store][rocksdb][conditional]") {
  test::temp_dir dir;
  {
    auto s = store::rocksdb_store::open(dir / "db").value();
    REQUIRE(s->put(record("a1", 1, "v1")));
    REQUIRE(s->replace(record("a1", 2, "v2"), record("a1", 1, "v1")));
  }
  auto s = store::rocksdb_store::open(dir / "db").value();
  CHECK(read(*s, "a1").payload == "v2");
  CHECK(is_stale(s->replace(record("a1", 3, "v3"), record("a1", 1, "v1"))));
  CHECK(is_stale(s->erase_if(record("a1", 1, "v1"))));
  REQUIRE(s->erase_if(record("a1", 2, "v2")));
  CHECK_FALSE(s->find(digest_of(2)).value().has_value());
}

TEST_CASE("pg: of two sessions changing what they both read, the second is refused and the log "
          "holds only the write made",
          "[store][pg][conditional]") {
  test::pg_fixture f;
  store::pg_store other{{test::pg_cluster::shared().url(f.database), {}, std::chrono::seconds(5)}};
  REQUIRE(f.store.put(record("a1", 1, "v1")));
  const auto seen_here = read(f.store, "a1");
  const auto seen_there = read(other, "a1");

  REQUIRE(f.store.replace(record("a1", 2, "rotated"), seen_here));
  CHECK(is_stale(other.replace(record("a1", 1, "renamed"), seen_there)));
  CHECK(is_stale(other.erase_if(seen_there)));
  CHECK(read(other, "a1").payload == "rotated");
  CHECK(read(other, "a1").value_digest == digest_of(2));

  auto& pg = test::pg_cluster::shared();
  CHECK(pg.query("SELECT string_agg(seq || ':' || id, ',' ORDER BY seq) FROM tokengate_changes",
                 f.database) == "1:a1,2:a1");
  REQUIRE(other.erase_if(read(other, "a1")));
  CHECK(pg.query("SELECT count(*) FROM tokengate_changes", f.database) == "3");
  CHECK(pg.query("SELECT count(*) FROM tokengate_tokens", f.database) == "0");
}

namespace {

// Runs `write` on a thread of its own while another session holds an open transaction that has
// changed (`change`) the row of "a1", then ends that transaction (`end`: COMMIT or ROLLBACK) once
// the write waits for its row lock; returns what the write returned.
store::result<void> while_held(const std::string& database, std::string_view change,
                               std::string_view end,
                               const std::function<store::result<void>()>& write) {
  auto& pg = test::pg_cluster::shared();
  store::pg_connection held({pg.url(database), {}, std::chrono::seconds(5)});
  REQUIRE(held.connect());
  REQUIRE(held.exec("BEGIN"));
  REQUIRE(held.exec(change));
  store::result<void> written = store::errc::io_error;
  std::thread writer([&] { written = write(); });
  const auto waiting = [&] {
    return pg.query("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                    "AND wait_event_type = 'Lock'",
                    database) == "1";
  };
  // Until the write blocks on the row (bounded: a write that never waits fails the test).
  bool blocked = false;
  for (int i = 0; i < 3000 && !(blocked = waiting()); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  CHECK(blocked);
  CHECK(held.exec(end));
  writer.join();
  return written;
}

} // namespace

TEST_CASE("pg: a conditional write waiting on another session's open transaction is refused "
          "when that one commits a change, taken when it rolls back",
          "[store][pg][conditional]") {
  test::pg_fixture f;
  REQUIRE(f.store.put(record("a1", 1, "v1")));
  const auto seen = read(f.store, "a1");

  // The other session renames the token and commits while this one's rotation waits.
  auto rotated =
      while_held(f.database, "UPDATE tokengate_tokens SET payload = 'renamed' WHERE id = 'a1'",
                 "COMMIT", [&] { return f.store.replace(record("a1", 2, "rotated"), seen); });
  CHECK(is_stale(rotated));
  CHECK(read(f.store, "a1").payload == "renamed"); // not overwritten: nothing lost
  CHECK(read(f.store, "a1").value_digest == digest_of(1));

  // The other session's rotation (digest only) commits while this one's delete waits.
  const auto renamed = read(f.store, "a1");
  auto erased = while_held(
      f.database,
      "UPDATE tokengate_tokens SET digest = decode(repeat('ab', 32), 'hex') WHERE id = 'a1'",
      "COMMIT", [&] { return f.store.erase_if(renamed); });
  CHECK(is_stale(erased));
  REQUIRE(f.store.get("a1").value().has_value()); // the rotated token is not deleted

  // One that rolls back changed nothing: the waiting write goes through.
  const auto current = read(f.store, "a1");
  auto taken =
      while_held(f.database, "UPDATE tokengate_tokens SET payload = 'never' WHERE id = 'a1'",
                 "ROLLBACK", [&] { return f.store.replace(record("a1", 3, "v3"), current); });
  CHECK(taken);
  CHECK(read(f.store, "a1").payload == "v3");
}

TEST_CASE("fleet: a write over a replica that lags is refused, and refresh brings the replica "
          "up to the database",
          "[store][fleet][conditional]") {
  test::fleet_fixture f;
  store::pg_store other{
      {test::pg_cluster::shared().url(f.pg.database), {}, std::chrono::seconds(5)}};
  REQUIRE(f.store.put(record("a1", 1, "v1")));
  const auto seen = read(f.store, "a1");
  // Another sidecar rotates; no follower runs here, so this replica still holds v1.
  REQUIRE(other.replace(record("a1", 2, "rotated"), seen));
  CHECK(read(f.store, "a1").payload == "v1");

  CHECK(is_stale(f.store.replace(record("a1", 1, "renamed"), seen)));
  auto change = f.store.refresh("a1");
  REQUIRE(change);
  REQUIRE(change->has_value());
  CHECK((*change)->previous == digest_of(1));
  REQUIRE((*change)->current.has_value());
  CHECK((*change)->current->payload == "rotated");
  const auto fresh = read(f.store, "a1");
  CHECK(fresh.payload == "rotated");
  CHECK(f.store.find(digest_of(2)).value().has_value());
  CHECK_FALSE(f.store.find(digest_of(1)).value().has_value());
  REQUIRE(f.store.replace(record("a1", 2, "rotated, renamed"), fresh));
  CHECK(read(other, "a1").payload == "rotated, renamed");

  // Deleted by the other sidecar: refused here, and refresh drops it from the replica.
  REQUIRE(other.erase("a1").value());
  CHECK(is_stale(f.store.erase_if(read(f.store, "a1"))));
  change = f.store.refresh("a1");
  REQUIRE(change);
  REQUIRE(change->has_value());
  CHECK((*change)->previous == digest_of(2));
  CHECK_FALSE((*change)->current.has_value());
  CHECK_FALSE(f.store.get("a1").value().has_value());
  CHECK_FALSE(f.store.find(digest_of(2)).value().has_value());
}

TEST_CASE("pg: a write whose session breaks during COMMIT, the reply lost, is found committed "
          "and is done",
          "[store][pg][conditional]") {
  test::pg_fixture f;
  f.owned.lose_next_commit_reply();
  REQUIRE(f.store.put(record("a1", 1, "v1")));
  f.owned.lose_next_commit_reply();
  REQUIRE(f.store.replace(record("a1", 2, "v2"), record("a1", 1, "v1")));
  CHECK(read(f.store, "a1").value_digest == digest_of(2));
  f.owned.lose_next_commit_reply();
  REQUIRE(f.store.erase_if(record("a1", 2, "v2")));
  CHECK_FALSE(f.store.get("a1").value().has_value());
  CHECK(test::pg_cluster::shared().query(
            "SELECT string_agg(seq || ':' || id, ',' ORDER BY seq) FROM tokengate_changes",
            f.database) == "1:a1,2:a1,3:a1");
}

TEST_CASE("pg: a write whose COMMIT reply is lost with the database itself is 'commit_unknown', "
          "and may indeed have been committed",
          "[store][pg][conditional]") {
  test::pg_cluster own;
  store::pg_store primary({own.url(), {}, std::chrono::seconds(2)});
  REQUIRE(primary.migrate());
  REQUIRE(primary.put(record("a1", 1, "v1")));

  primary.lose_next_commit_reply([&] { own.kill(); });
  auto rotated = primary.replace(record("a1", 2, "v2"), record("a1", 1, "v1"));
  REQUIRE_FALSE(rotated);
  CHECK(rotated.error() == store::errc::commit_unknown);
  own.start();
  CHECK(read(primary, "a1").value_digest == digest_of(2)); // it was committed
}
