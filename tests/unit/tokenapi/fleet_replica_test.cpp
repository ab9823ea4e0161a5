// A fleet sidecar whose local replica fails to take a write the database has committed: the
// token service over fleet mode's store (real PostgreSQL, real RocksDB replica behind a wrapper
// that can refuse writes) and the follower of the change log, beside a second sidecar writing
// straight to the database. The sidecar must never go on accepting a key the database no
// longer holds.
#include "store/fleet_follower.hpp"
#include "tests/unit/store/store_fixtures.hpp"
#include "tests/unit/tokenapi/api_fixture.hpp"

#include <catch2/catch.hpp>

using namespace tokengate;
using namespace tokengate::test;
using tokenapi::permission;

namespace {

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
  store::pg_store a_primary{{pg_cluster::shared().url(db.database), {}, std::chrono::seconds(5)}};
  store::fleet_store a_store{a_primary, wrapper};
  tokenapi::manual_clock clock{t0};
  restarted a{a_store, clock};
  restarted b{db.store, clock};
  store::fleet_follower follower{
      {pg_cluster::shared().url(db.database), {}, std::chrono::seconds(5)},
      *replica,
      a.service,
      {}};
  std::shared_ptr<tokenapi::auth_entry> root = [] {
    tokenapi::token t;
    t.id = "test-root";
    t.permissions = tokenapi::permission_set::all();
    return tokenapi::auth_entry::from(t);
  }();

  std::vector<std::string> reported; ///< ids whose replica write failed, as the log hears

  fleet_pair() {
    a_store.on_replica_failure([this](std::string_view id, boost::system::error_code why) {
      CHECK(why == store::errc::io_error);
      reported.emplace_back(id);
    });
    REQUIRE(follower.connect_and_sync());
  }

  /// A catch-up of A's follower: one page of the change log.
  void sync() { REQUIRE(follower.catch_up()); }

  static tokenapi::token_spec spec(std::string name) {
    tokenapi::token_spec s;
    s.name = std::move(name);
    s.permissions.insert(permission::AlertRead);
    return s;
  }
  /// Whether sidecar `s` lets `key` through.
  bool accepted(restarted& s, const std::string& key) const {
    return s.auth.decide(key, ip("127.0.0.1"), {}, clock.now()).allowed();
  }
};

} // namespace

TEST_CASE_METHOD(fleet_pair,
                 "a rotation the replica missed, then a delete elsewhere: neither key works on "
                 "the sidecar that rotated",
                 "[service][fleet]") {
  auto made = a.service.create(*root, spec("ci"));
  REQUIRE(made);
  sync();
  REQUIRE(b.service.load());

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
  auto made = a.service.create(*root, spec("ci"));
  REQUIRE(made);
  sync();

  wrapper.failing = true;
  auto rotated = a.service.rotate(*root, made->t.id);
  REQUIRE(rotated);
  auto created = a.service.create(*root, spec("new"));
  REQUIRE(created);
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
                 "an update or a delete the replica missed stands, and the token is refused "
                 "until the follower brings the change in",
                 "[service][fleet]") {
  auto kept = a.service.create(*root, spec("kept"));
  auto gone = a.service.create(*root, spec("gone"));
  REQUIRE(kept);
  REQUIRE(gone);
  sync();

  wrapper.failing = true;
  auto renamed = a.service.update(*root, kept->t.id, spec("renamed"));
  REQUIRE(renamed);
  CHECK(renamed->name == "renamed");
  REQUIRE(a.service.erase(gone->t.id));
  wrapper.failing = false;
  CHECK_FALSE(accepted(a, kept->value));
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
                 "a rotation whose COMMIT reply was lost, though committed, hands out a key "
                 "that works",
                 "[service][fleet]") {
  auto made = a.service.create(*root, spec("ci"));
  REQUIRE(made);
  a_primary.lose_next_commit_reply();
  auto rotated = a.service.rotate(*root, made->t.id);
  REQUIRE(rotated);
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

  primary.lose_next_commit_reply([&] { own.kill(); });
  auto answer = s.as(admin->value).post("/api-tokens/" + target->t.id + "/rotate");
  CHECK(answer.status == 503);
  CHECK(answer.message() == "the token database was lost while committing this change: it may "
                            "have been applied; read the token to see");
  own.start();
  // It was: the token's value changed (to one nobody received).
  CHECK(primary.get(target->t.id).value()->value_digest != target->t.value_digest);
}
