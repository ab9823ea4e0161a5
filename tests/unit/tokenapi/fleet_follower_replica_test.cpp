// A fleet sidecar whose replica fails to take (or to read) the changes its follower brings from
// the database's change log: a key deleted or rotated on another sidecar must be refused here
// at once all the same, and the change applied once the replica takes writes again.
#include "tests/unit/tokenapi/fleet_pair.hpp"

#include <catch2/catch.hpp>

using namespace tokengate;
using namespace tokengate::test;

TEST_CASE_METHOD(fleet_pair,
                 "a delete elsewhere that the replica fails to take: the key is refused at once, "
                 "and the change is applied once the replica takes writes again",
                 "[service][fleet]") {
  auto gone = create_on_a("gone");
  auto kept = create_on_a("kept");
  auto rotated_away = create_on_a("rotated");
  sync_both();
  const auto seq = applied_seq();

  followed.failing_writes = true;
  REQUIRE(b.service.erase(gone->t.id));
  auto rotated = b.service.rotate(*root, rotated_away->t.id);
  REQUIRE(rotated);
  CHECK_FALSE(follower.catch_up());
  CHECK_FALSE(accepted(a, gone->value));
  CHECK_FALSE(accepted(a, rotated_away->value));
  CHECK_FALSE(accepted(a, rotated->value)); // the replica does not hold it yet
  CHECK(accepted(a, kept->value));          // not changed: untouched
  CHECK(applied_seq() == seq);              // the page is read again

  // Failing again on the next try changes nothing.
  CHECK_FALSE(follower.catch_up());
  CHECK_FALSE(accepted(a, gone->value));

  followed.failing_writes = false;
  sync();
  CHECK_FALSE(accepted(a, gone->value));
  CHECK_FALSE(accepted(a, rotated_away->value));
  CHECK(accepted(a, rotated->value));
  CHECK(accepted(a, kept->value));
  CHECK_FALSE(replica->get(gone->t.id).value().has_value());
  CHECK(applied_seq() != seq);
}

TEST_CASE_METHOD(fleet_pair,
                 "a replica that cannot tell what it holds of a token deleted elsewhere: the key "
                 "is refused, and the log is read again",
                 "[service][fleet]") {
  auto gone = create_on_a("gone");
  auto kept = create_on_a("kept");
  sync_both();
  const auto seq = applied_seq();

  REQUIRE(b.service.erase(gone->t.id));
  followed.failing_reads = true;
  CHECK_FALSE(follower.catch_up());
  followed.failing_reads = false;
  CHECK_FALSE(accepted(a, gone->value));
  CHECK(accepted(a, kept->value));
  CHECK(applied_seq() == seq);
  // The replica never lost it: it is the follower's next page that takes the delete.
  CHECK(replica->get(gone->t.id).value().has_value());

  sync();
  CHECK_FALSE(accepted(a, gone->value));
  CHECK(accepted(a, kept->value));
  CHECK_FALSE(replica->get(gone->t.id).value().has_value());
}

TEST_CASE_METHOD(fleet_pair,
                 "a replica failing to take the log's changes is reported as such, resumed, and "
                 "its recovery reported",
                 "[service][fleet]") {
  auto gone = create_on_a("gone");
  sync_both();

  followed.failing_writes = true;
  follower.start(true);
  REQUIRE(b.service.erase(gone->t.id));
  REQUIRE(reported_event(store::follower_event::kind::replica_write_failed));
  CHECK_FALSE(accepted(a, gone->value));
  CHECK(reported_count(store::follower_event::kind::disconnected) == 0);
  {
    std::lock_guard lock(events_mutex);
    CHECK(details.back() == "IO error: injected");
  }
  followed.failing_writes = false;
  REQUIRE(reported_event(store::follower_event::kind::replica_recovered));
  follower.stop();
  CHECK(followed.resumed > 0);
  CHECK_FALSE(accepted(a, gone->value));
  CHECK_FALSE(replica->get(gone->t.id).value().has_value());
}

// A snapshot (here: the log pruned while the sidecar was away) whose page the replica cannot
// settle must not leave a key deleted or rotated elsewhere accepted here either.
TEST_CASE_METHOD(fleet_pair,
                 "a snapshot whose replica cannot be read: a key deleted elsewhere is refused, and "
                 "the others come back once the replica reads again",
                 "[service][fleet]") {
  auto gone = create_on_a("gone");
  auto kept = create_on_a("kept");
  sync_both();
  REQUIRE(b.service.erase(gone->t.id));
  prune_log();

  followed.failing_reads = true;
  CHECK_FALSE(follower.catch_up());
  CHECK_FALSE(accepted(a, gone->value));
  // Refused too meanwhile: the replica could not tell what it holds of the page's ids.
  CHECK_FALSE(accepted(a, kept->value));
  CHECK_FALSE(follower.catch_up()); // failing again changes nothing
  CHECK_FALSE(accepted(a, gone->value));

  followed.failing_reads = false;
  sync();
  CHECK_FALSE(accepted(a, gone->value));
  CHECK(accepted(a, kept->value));
  CHECK_FALSE(replica->get(gone->t.id).value().has_value());
  std::lock_guard lock(events_mutex);
  CHECK(events.back() == store::follower_event::kind::snapshot);
}

TEST_CASE_METHOD(fleet_pair,
                 "a snapshot the replica fails to take: keys deleted or rotated elsewhere are "
                 "refused, and the changes are applied once the replica takes writes again",
                 "[service][fleet]") {
  auto gone = create_on_a("gone");
  auto kept = create_on_a("kept");
  auto rotated_away = create_on_a("rotated");
  sync_both();
  REQUIRE(b.service.erase(gone->t.id));
  auto rotated = b.service.rotate(*root, rotated_away->t.id);
  REQUIRE(rotated);
  prune_log();

  followed.failing_writes = true;
  CHECK_FALSE(follower.catch_up());
  CHECK_FALSE(accepted(a, gone->value));
  CHECK_FALSE(accepted(a, rotated_away->value));
  CHECK_FALSE(accepted(a, rotated->value)); // the replica does not hold it yet
  CHECK(accepted(a, kept->value));          // the same in the database: untouched
  CHECK(replica->get(gone->t.id).value().has_value());

  followed.failing_writes = false;
  sync();
  CHECK_FALSE(accepted(a, gone->value));
  CHECK_FALSE(accepted(a, rotated_away->value));
  CHECK(accepted(a, rotated->value));
  CHECK(accepted(a, kept->value));
  CHECK_FALSE(replica->get(gone->t.id).value().has_value());
}

TEST_CASE_METHOD(fleet_pair,
                 "a snapshot the replica cannot read or does not take is reported as such, tried "
                 "again, and its recovery reported",
                 "[service][fleet]") {
  auto gone = create_on_a("gone");
  auto kept = create_on_a("kept");
  sync_both();
  REQUIRE(b.service.erase(gone->t.id));
  prune_log();
  {
    std::lock_guard lock(events_mutex);
    events.clear(); // the first sync's snapshot
  }

  std::atomic<bool>* failing = &followed.failing_reads;
  auto failure = store::follower_event::kind::replica_read_failed;
  SECTION("reads") {}
  SECTION("writes") {
    failing = &followed.failing_writes;
    failure = store::follower_event::kind::replica_write_failed;
  }
  *failing = true;
  follower.start(true);
  REQUIRE(reported_event(failure));
  CHECK_FALSE(accepted(a, gone->value));
  *failing = false;
  REQUIRE(reported_event(store::follower_event::kind::replica_recovered));
  follower.stop();
  CHECK(reported_count(store::follower_event::kind::disconnected) == 0);
  CHECK(reported_count(store::follower_event::kind::snapshot) == 1);
  CHECK_FALSE(accepted(a, gone->value));
  CHECK(accepted(a, kept->value));
  CHECK_FALSE(replica->get(gone->t.id).value().has_value());
}

// A log page the replica failed on drops its tokens from the view; when the log is pruned before
// the replica recovers, the snapshot that follows must publish them again, also those the
// replica already holds as the database does (this sidecar's own write, here).
TEST_CASE_METHOD(fleet_pair,
                 "a key a failed log page dropped comes back through the snapshot that follows a "
                 "pruned log",
                 "[service][fleet]") {
  auto kept = create_on_a("kept"); // in the replica already; its log entry not yet followed
  auto gone = create_on_a("gone");
  REQUIRE(b.service.erase(gone->t.id));

  std::atomic<bool>* failing = &followed.failing_reads;
  SECTION("reads") {}
  SECTION("writes") { failing = &followed.failing_writes; }
  *failing = true;
  CHECK_FALSE(follower.catch_up());
  CHECK_FALSE(accepted(a, kept->value)); // the page's tokens are dropped meanwhile
  CHECK_FALSE(accepted(a, gone->value));

  prune_log();
  *failing = false;
  sync();
  CHECK(accepted(a, kept->value));
  CHECK_FALSE(accepted(a, gone->value));
  std::lock_guard lock(events_mutex);
  CHECK(events.back() == store::follower_event::kind::snapshot);
}
