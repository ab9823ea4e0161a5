// Two sidecars changing one token at once: sidecar A's service writes through a store that lets
// sidecar B change the shared record between A's read and A's write (as another sidecar of a
// fleet may). A's change is applied again to the token as B left it, or answered 404 when B
// deleted it; it is never lost, and never answered 200 unwritten.
#include "tests/unit/tokenapi/api_fixture.hpp"

#include <functional>

using namespace tokengate;
using namespace tokengate::test;
using tokenapi::permission;

namespace {

/// The shared store as sidecar A reaches it: before A's conditional writes, `interfere` runs
/// (B's concurrent change); `refresh` reports what A's view missed, as fleet mode's replica does.
class racing_store final : public store::token_store {
public:
  explicit racing_store(store::token_store& shared) : shared_(shared) {}

  std::function<void()> interfere;
  bool every_time = false; ///< interfere before each write, not just the next one
  int refused = 0;         ///< conditional writes refused as stale

  store::result<std::optional<store::token_record>> get(std::string_view id) const override {
    return shared_.get(id);
  }
  store::result<std::optional<store::token_record>> find(const store::digest& d) const override {
    return shared_.find(d);
  }
  store::result<void> put(const store::token_record& r, std::string_view marker) override {
    return shared_.put(r, marker);
  }
  store::result<void> put_many(std::span<const store::token_record> records) override {
    return shared_.put_many(records);
  }
  store::result<bool> erase(std::string_view id) override { return shared_.erase(id); }
  store::result<void> replace(const store::token_record& record,
                              const store::token_record& expected) override {
    race();
    return noted(shared_.replace(record, expected), expected);
  }
  store::result<void> erase_if(const store::token_record& expected) override {
    race();
    return noted(shared_.erase_if(expected), expected);
  }
  store::result<std::optional<store::replicated_change>> refresh(std::string_view id) override {
    auto current = shared_.get(id);
    REQUIRE(current);
    return std::optional<store::replicated_change>{
        store::replicated_change{std::string(id), missed_, std::move(*current)}};
  }
  store::result<std::vector<store::token_record>> scan(std::string_view after,
                                                       std::size_t limit) const override {
    return shared_.scan(after, limit);
  }
  store::result<void> write_last_used(std::span<const store::usage> notes) override {
    return shared_.write_last_used(notes);
  }
  store::result<bool> has_marker(std::string_view marker) const override {
    return shared_.has_marker(marker);
  }
  store::result<void> flush() override { return shared_.flush(); }

private:
  void race() {
    if (!interfere)
      return;
    auto change = interfere;
    if (!every_time)
      interfere = nullptr;
    change();
  }
  store::result<void> noted(store::result<void> written, const store::token_record& expected) {
    if (!written && written.error() == store::errc::stale) {
      ++refused;
      missed_ = expected.value_digest;
    }
    return written;
  }

  store::token_store& shared_;
  std::optional<store::digest> missed_;
};

struct two_sidecars {
  store::memory_store shared;
  racing_store racing{shared};
  tokenapi::manual_clock clock{t0};
  restarted a{racing, clock};
  restarted b{shared, clock};
  tokenapi::token root_token = [] {
    tokenapi::token t;
    t.id = "test-root";
    t.permissions = tokenapi::permission_set::all();
    return t;
  }();
  std::shared_ptr<tokenapi::auth_entry> root = tokenapi::auth_entry::from(root_token);

  static tokenapi::token_spec spec(std::string name) {
    tokenapi::token_spec s;
    s.name = std::move(name);
    s.permissions.insert(permission::AlertRead);
    return s;
  }

  /// A token made on A and known to both sidecars: {id, value}.
  issued_token made() {
    auto t = a.service.create(*root, spec("ci"));
    REQUIRE(t);
    REQUIRE(b.service.load());
    return {t->t.id, t->value};
  }

  /// The status a key gets from sidecar `s` asking about itself.
  static unsigned status(restarted& s, const std::string& key) {
    return s.as(key).get("/api-tokens/self").status;
  }
};

} // namespace

TEST_CASE_METHOD(two_sidecars,
                 "an update racing a rotation elsewhere keeps the new key and the "
                 "new name",
                 "[service][race]") {
  const auto token = made();
  std::string rotated_value;
  racing.interfere = [&] {
    auto rotated = b.service.rotate(*root, token.id);
    REQUIRE(rotated);
    rotated_value = rotated->value;
  };

  auto updated = a.service.update(*root, token.id, spec("renamed"));
  REQUIRE(updated);
  CHECK(racing.refused == 1);
  CHECK(updated->name == "renamed");
  CHECK(updated->value_digest == tokenapi::digest_of(rotated_value));
  auto stored = b.service.get(token.id);
  REQUIRE(stored);
  CHECK(stored->name == "renamed");
  CHECK(stored->value_digest == tokenapi::digest_of(rotated_value));
  // The key handed out by the rotation works on A; the one it replaced works nowhere.
  CHECK(status(a, rotated_value) == 200);
  CHECK(status(a, token.value) == 401);
  CHECK(status(b, token.value) == 401);
}

TEST_CASE_METHOD(two_sidecars,
                 "an update racing a delete elsewhere answers 404 and the token "
                 "stays deleted",
                 "[service][race]") {
  const auto token = made();
  racing.interfere = [&] { REQUIRE(b.service.erase(token.id)); };

  auto updated = a.service.update(*root, token.id, spec("renamed"));
  REQUIRE_FALSE(updated);
  CHECK(updated.error().status == 404);
  CHECK_FALSE(shared.get(token.id).value().has_value());
  CHECK(status(a, token.value) == 401);
  CHECK(a.as(token.value).get("/api-tokens/" + token.id).status == 401);
}

TEST_CASE_METHOD(two_sidecars,
                 "a rotation racing an update elsewhere hands out a key that works "
                 "and keeps the update",
                 "[service][race]") {
  const auto token = made();
  racing.interfere = [&] { REQUIRE(b.service.update(*root, token.id, spec("renamed"))); };

  auto rotated = a.service.rotate(*root, token.id);
  REQUIRE(rotated);
  CHECK(racing.refused == 1);
  auto stored = b.service.get(token.id);
  REQUIRE(stored);
  CHECK(stored->name == "renamed");
  CHECK(stored->value_digest == tokenapi::digest_of(rotated->value));
  CHECK(status(a, rotated->value) == 200);
  CHECK(status(a, token.value) == 401);
}

TEST_CASE_METHOD(two_sidecars,
                 "a token asking for its permissions back while another sidecar lowers them "
                 "is refused",
                 "[service][race]") {
  // T holds AlertRead and RuleRead; an admin on B takes RuleRead away while T, on A, updates
  // itself asking for both: A reads again and finds T without RuleRead, so T cannot grant it.
  auto both = spec("self");
  both.permissions.insert(permission::RuleRead);
  auto made_t = a.service.create(*root, both);
  REQUIRE(made_t);
  const auto t_entry = tokenapi::auth_entry::from(made_t->t); // T as A admitted its request
  racing.interfere = [&] { REQUIRE(b.service.update(*root, made_t->t.id, spec("lowered"))); };

  auto updated = a.service.update(*t_entry, made_t->t.id, both);
  REQUIRE_FALSE(updated);
  CHECK(updated.error().status == 403);
  CHECK(updated.error().message == "cannot grant permissions the caller does not hold: RuleRead");
  auto stored = b.service.get(made_t->t.id);
  REQUIRE(stored);
  CHECK(stored->name == "lowered");
  CHECK_FALSE(stored->permissions.contains(permission::RuleRead));
}

TEST_CASE_METHOD(two_sidecars, "a delete racing a rotation elsewhere deletes the rotated token",
                 "[service][race]") {
  const auto token = made();
  std::string rotated_value;
  racing.interfere = [&] { rotated_value = b.service.rotate(*root, token.id).value().value; };

  REQUIRE(a.service.erase(token.id));
  CHECK(racing.refused == 1);
  CHECK(shared.scan("", 10).value().empty());
  CHECK(status(a, rotated_value) == 401);
  CHECK(status(a, token.value) == 401);
}

TEST_CASE_METHOD(two_sidecars,
                 "a token changed elsewhere before every write: 503, nothing of "
                 "this change written",
                 "[service][race]") {
  const auto token = made();
  auto admin = a.service.create(*root, [] {
    tokenapi::token_spec s;
    s.name = "admin";
    s.permissions = tokenapi::permission_set::all();
    return s;
  }());
  REQUIRE(admin);
  int renamed = 0;
  racing.every_time = true;
  racing.interfere = [&] {
    REQUIRE(b.service.update(*root, token.id, spec("b" + std::to_string(++renamed))));
  };

  auto answer =
      a.as(admin->value).post("/api-tokens/" + token.id, spec_body("from a", {"AlertRead"}));
  CHECK(answer.status == 503);
  CHECK(answer.message().find("changed elsewhere") != std::string::npos);
  CHECK(renamed > 1);
  CHECK(b.service.get(token.id).value().name == "b" + std::to_string(renamed));
}

TEST_CASE_METHOD(two_sidecars,
                 "an update, rotation or delete changed under 7 times in a row is applied, "
                 "changed under 8 times in a row is a 503 and writes nothing",
                 "[service][race]") {
  // README "Concurrent changes to one token": "A token that other sidecars keep changing under
  // a request 8 times in a row gets 503 ... nothing of that request was written".
  const auto token = made();
  const auto admin = a.service
                         .create(*root,
                                 [] {
                                   tokenapi::token_spec s;
                                   s.name = "admin";
                                   s.permissions = tokenapi::permission_set::all();
                                   return s;
                                 }())
                         .value()
                         .value;
  int renamed = 0;
  int times = 0; // how many of A's writes B changes the token before
  racing.every_time = true;
  racing.interfere = [&] {
    if (renamed < times)
      REQUIRE(b.service.update(*root, token.id, spec("b" + std::to_string(++renamed))));
  };
  const auto contended = "the api token was changed elsewhere at the same time, again and "
                         "again; nothing was changed, try again";
  const auto target = "/api-tokens/" + token.id;

  SECTION("an update") {
    times = 7;
    auto applied = a.as(admin).post(target, spec_body("from a", {"AlertRead", "RuleRead"}));
    CHECK(applied.status == 200);
    CHECK(applied.text("name") == "from a");
    CHECK(racing.refused == 7);
    CHECK(b.service.get(token.id).value().name == "from a");

    renamed = 0;
    racing.refused = 0;
    times = 8;
    auto refused = a.as(admin).post(target, spec_body("again from a", {"AlertRead"}));
    CHECK(refused.status == 503);
    CHECK(refused.message() == contended);
    CHECK(racing.refused == 8);
    const auto stored = b.service.get(token.id).value();
    CHECK(stored.name == "b8"); // B's last change, not A's
    CHECK(stored.permissions.contains(permission::AlertRead));
    CHECK_FALSE(stored.permissions.contains(permission::RuleRead));
  }
  SECTION("a rotation") {
    times = 7;
    auto applied = a.as(admin).post(target + "/rotate");
    REQUIRE(applied.status == 200);
    CHECK(racing.refused == 7);
    CHECK(status(a, applied.value()) == 200);
    CHECK(status(a, token.value) == 401);
    CHECK(b.service.get(token.id).value().name == "b7");

    renamed = 0;
    racing.refused = 0;
    times = 8;
    auto refused = a.as(admin).post(target + "/rotate");
    CHECK(refused.status == 503);
    CHECK(refused.message() == contended);
    CHECK(racing.refused == 8);
    // The key the first rotation handed out still works: the second rotated nothing.
    CHECK(status(a, applied.value()) == 200);
    CHECK(shared.get(token.id).value().value().value_digest ==
          tokenapi::digest_of(applied.value()));
    CHECK(b.service.get(token.id).value().name == "b8");
  }
  SECTION("a delete") {
    times = 8;
    auto refused = a.as(admin).del(target);
    CHECK(refused.status == 503);
    CHECK(refused.message() == contended);
    CHECK(racing.refused == 8);
    REQUIRE(shared.get(token.id).value().has_value()); // not deleted
    CHECK(b.service.get(token.id).value().name == "b8");
    CHECK(status(a, token.value) == 200);

    renamed = 0;
    racing.refused = 0;
    times = 7;
    CHECK(a.as(admin).del(target).status == 204);
    CHECK(racing.refused == 7);
    CHECK_FALSE(shared.get(token.id).value().has_value());
    CHECK(status(a, token.value) == 401);
  }
}

namespace {

struct recording_audit final : tokenapi::audit_sink {
  void record(const tokenapi::audit_event& e) override { events.push_back(e); }
  bool ready() override { return true; }
  std::vector<tokenapi::audit_event> events;
};

} // namespace

TEST_CASE_METHOD(two_sidecars,
                 "the audit trail of a change applied again names the fields changed from the "
                 "version it replaced",
                 "[service][race][audit]") {
  const auto token = made();
  recording_audit trail;
  tokenapi::api_handler audited{a.service, a.auth, clock, &trail};
  tokenapi::token_spec all;
  all.name = "admin";
  all.permissions = tokenapi::permission_set::all();
  const auto admin = a.service.create(*root, all).value().value;
  // B renames the token and adds a permission between A's read and A's write; A's request
  // asks for the name and permissions the token had when A first read it.
  racing.interfere = [&] {
    auto wider = spec("b-name");
    wider.permissions.insert(permission::RuleRead);
    REQUIRE(b.service.update(*root, token.id, wider));
  };

  auto answer =
      client(audited, admin).post("/api-tokens/" + token.id, spec_body("ci", {"AlertRead"}));
  CHECK(answer.status == 200);
  CHECK(racing.refused == 1);
  REQUIRE(trail.events.size() == 1);
  CHECK(trail.events[0].target_name == "ci");
  CHECK(trail.events[0].changed == std::vector<std::string>{"name", "permissions"});

  // A delete racing a rename elsewhere names the token as it deleted it.
  racing.interfere = [&] { REQUIRE(b.service.update(*root, token.id, spec("renamed"))); };
  CHECK(client(audited, admin).del("/api-tokens/" + token.id).status == 204);
  REQUIRE(trail.events.size() == 2);
  CHECK(trail.events[1].operation == "delete");
  CHECK(trail.events[1].target_name == "renamed");
}
