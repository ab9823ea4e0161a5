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
  {
    std::lock_guard lock(events_mutex);
    CHECK(std::count(events.begin(), events.end(), store::follower_event::kind::disconnected) == 0);
    CHECK(details.back() == "IO error: injected");
  }
  followed.failing_writes = false;
  REQUIRE(reported_event(store::follower_event::kind::replica_recovered));
  follower.stop();
  CHECK(followed.resumed > 0);
  CHECK_FALSE(accepted(a, gone->value));
  CHECK_FALSE(replica->get(gone->t.id).value().has_value());
}
