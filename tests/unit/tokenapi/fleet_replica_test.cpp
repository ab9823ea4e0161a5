// A fleet sidecar whose local replica fails to take a write the database has committed: the
// token service over fleet mode's store (real PostgreSQL, real RocksDB replica behind a wrapper
// that can refuse writes) and the follower of the change log, beside a second sidecar writing
// straight to the database. The sidecar must never go on accepting a key the database no
// longer holds.
#include "tests/unit/tokenapi/fleet_pair.hpp"

#include <catch2/catch.hpp>

using namespace tokengate;
using namespace tokengate::test;

TEST_CASE_METHOD(fleet_pair,
                 "a rotation the replica missed, then a delete elsewhere: neither key works on "
                 "the sidecar that rotated",
                 "[service][fleet]") {
  auto made = create_on_a("ci");
  sync_both();

  wrapper.failing = true;
  auto rotated = a.service.rotate(*root, made->t.id);
  REQUIRE(rotated); // the database committed it: the caller gets the new key
  wrapper.failing = false;
  CHECK(b.service.get(made->t.id).value().value_digest == tokenapi::digest_of(rotated->value));

  // B deletes the token before A's follower has read A's own rotation: both log entries come
  // to A in one page.
  REQUIRE(b.service.load());
  REQUIRE(b.service.erase(made->t.id));
  sync();
  CHECK_FALSE(accepted(a, made->value));
  CHECK_FALSE(accepted(a, rotated->value));
  CHECK_FALSE(replica->get(made->t.id).value().has_value());
}

TEST_CASE_METHOD(fleet_pair,
                 "a token the replica missed is refused on that sidecar until the follower "
                 "brings it in",
                 "[service][fleet]") {
  auto made = create_on_a("ci");
  sync();

  wrapper.failing = true;
  auto rotated = a.service.rotate(*root, made->t.id);
  REQUIRE(rotated);
  auto created = create_on_a("new");
  wrapper.failing = false;
  CHECK(reported == std::vector<std::string>{made->t.id, created->t.id});
  // Refused here (failing closed), though the database holds them: nothing but the database's
  // word brings them back.
  CHECK_FALSE(accepted(a, made->value));
  CHECK_FALSE(accepted(a, rotated->value));
  CHECK_FALSE(accepted(a, created->value));

  sync();
  CHECK_FALSE(accepted(a, made->value));
  CHECK(accepted(a, rotated->value));
  CHECK(accepted(a, created->value));
  CHECK(replica->get(made->t.id).value()->value_digest == tokenapi::digest_of(rotated->value));
}

TEST_CASE_METHOD(fleet_pair,
                 "an update the replica missed stands and holds here at once, and a delete the "
                 "replica missed stands and the key is refused",
                 "[service][fleet]") {
  auto kept = create_on_a("kept");
  auto gone = create_on_a("gone");
  sync();

  wrapper.failing = true;
  auto narrowed = spec("renamed");
  narrowed.permissions = tokenapi::permission_set{};
  narrowed.permissions.insert(tokenapi::permission::RuleRead);
  auto renamed = a.service.update(*root, kept->t.id, narrowed);
  REQUIRE(renamed);
  CHECK(renamed->name == "renamed");
  REQUIRE(a.service.erase(gone->t.id));
  wrapper.failing = false;
  CHECK(reported == std::vector<std::string>{kept->t.id, gone->t.id});
  // The update (the key unchanged) holds here at once, its narrowing with it.
  CHECK(accepted(a, kept->value));
  CHECK(a.auth.find(tokenapi::digest_of(kept->value))->name() == "renamed");
  tokenapi::permission_set alert_read;
  alert_read.insert(tokenapi::permission::AlertRead);
  CHECK(a.auth.decide(kept->value, ip("127.0.0.1"), alert_read, t0).outcome ==
        tokenapi::verdict::missing_permission);
  CHECK_FALSE(accepted(a, gone->value));
  CHECK(b.service.get(kept->t.id).value().name == "renamed");
  CHECK(b.service.get(gone->t.id).error().status == 404);

  sync();
  CHECK(accepted(a, kept->value));
  CHECK(a.auth.find(tokenapi::digest_of(kept->value))->name() == "renamed");
  CHECK_FALSE(accepted(a, gone->value));
  CHECK_FALSE(replica->get(gone->t.id).value().has_value());
}

TEST_CASE_METHOD(fleet_pair,
                 "an update the replica missed, then a delete elsewhere: the key is refused once "
                 "the follower brings the delete in",
                 "[service][fleet]") {
  auto made = create_on_a("ci");
  sync();

  wrapper.failing = true;
  REQUIRE(a.service.update(*root, made->t.id, spec("renamed")));
  wrapper.failing = false;
  REQUIRE(b.service.load());
  REQUIRE(b.service.erase(made->t.id));
  sync(); // the update and the delete in one page
  CHECK_FALSE(accepted(a, made->value));
  CHECK(a.auth.find(tokenapi::digest_of(made->value)) == nullptr);
  CHECK_FALSE(replica->get(made->t.id).value().has_value());
}

TEST_CASE_METHOD(fleet_pair,
                 "a rotation whose COMMIT reply was lost, though committed, hands out a key "
                 "that works",
                 "[service][fleet]") {
  auto made = create_on_a("ci");
  a_primary.lose_next_commit_reply();
  auto rotated = a.service.rotate(*root, made->t.id);
  REQUIRE(rotated);
  CHECK(lost_commits == std::vector<std::pair<std::string, bool>>{{made->t.id, true}});
  CHECK(accepted(a, rotated->value));
  CHECK_FALSE(accepted(a, made->value));
  REQUIRE(b.service.load());
  CHECK(accepted(b, rotated->value));
  CHECK_FALSE(accepted(b, made->value));
}

TEST_CASE("a change whose COMMIT reply is lost with the database answers 503 saying it may "
          "have been applied",
          "[service][fleet]") {
  pg_cluster own;
  store::pg_store primary({own.url(), {}, std::chrono::seconds(2)});
  REQUIRE(primary.migrate());
  tokenapi::manual_clock clock{t0};
  restarted s{primary, clock};
  tokenapi::token_spec all;
  all.name = "admin";
  all.permissions = tokenapi::permission_set::all();
  tokenapi::token root_token;
  root_token.permissions = tokenapi::permission_set::all();
  auto admin = s.service.create(*tokenapi::auth_entry::from(root_token), all);
  REQUIRE(admin);
  auto target = s.service.create(*tokenapi::auth_entry::from(root_token), fleet_pair::spec("ci"));
  REQUIRE(target);

  std::vector<std::pair<std::string, bool>> lost;
  primary.on_lost_commit(
      [&](std::string_view id, bool applied) { lost.emplace_back(id, applied); });
  primary.lose_next_commit_reply([&] { own.kill(); });
  auto answer = s.as(admin->value).post("/api-tokens/" + target->t.id + "/rotate");
  CHECK(answer.status == 503);
  CHECK(lost == std::vector<std::pair<std::string, bool>>{{target->t.id, false}});
  CHECK(answer.message() == "the token database was lost while committing this change: it may "
                            "have been applied; read the token to see");
  own.start();
  // It was: the token's value changed (to one nobody received).
  CHECK(primary.get(target->t.id).value()->value_digest != target->t.value_digest);
}
