// Start-up and a fleet's snapshot load tokens through two readers (the fast one of
// tokenapi/plain_record.hpp and the full decoder): what they load decides as the tokens did.
#include "tests/unit/tokenapi/api_fixture.hpp"

#include <catch2/catch.hpp>

using namespace tokengate;
using namespace tokengate::test;
using tokenapi::permission;

TEST_CASE_METHOD(api_world,
                 "after a restart, names to unescape, blocks and expiries decide as before",
                 "[service][load]") {
  // Start-up reads most records without a JSON document and the rest whole: both kinds here.
  const auto later = t0 + std::chrono::hours(1);
  const auto quoted =
      issue("say \"hi\" caf\xc3\xa9", {permission::AlertRead}, {"10.0.0.0/8"}, later);
  const auto plain =
      issue("plain", {permission::AlertRead}, {"10.0.0.0/8", "2001:db8::/32"}, later);
  restarted next(store, clock);
  REQUIRE(next.service.load());
  for (const auto* t : {&quoted, &plain}) {
    const auto read = set_of({permission::AlertRead});
    CHECK(next.auth.decide(t->value, ip("10.9.9.9"), read, t0).allowed());
    CHECK(next.auth.decide(t->value, ip("2001:db8::1"), read, t0).allowed() == (t == &plain));
    CHECK(next.auth.decide(t->value, ip("192.0.2.1"), read, t0).outcome ==
          tokenapi::verdict::address_not_allowed);
    CHECK(next.auth.decide(t->value, ip("10.9.9.9"), read, later).outcome ==
          tokenapi::verdict::expired_key);
    CHECK(next.auth.decide(t->value, ip("10.9.9.9"), set_of({permission::RuleRead}), t0).outcome ==
          tokenapi::verdict::missing_permission);
  }
  CHECK(next.as(quoted.value).from("10.1.1.1").get("/api-tokens/self").text("name") ==
        "say \"hi\" caf\xc3\xa9");
}

TEST_CASE_METHOD(api_world, "after a restart, each token keeps its own blocks, however many differ",
                 "[service][load]") {
  // One page of tokens each pinned to a /32 of its own (and one with two blocks): each is
  // allowed from its addresses only.
  std::vector<issued_token> pinned;
  for (int i = 0; i < 300; ++i)
    pinned.push_back(issue("pinned " + std::to_string(i), {permission::AlertRead},
                           {"10.0." + std::to_string(i / 256) + "." + std::to_string(i % 256)}));
  const auto two = issue("two", {permission::AlertRead}, {"192.0.2.0/24", "10.0.0.7"});
  restarted next(store, clock);
  REQUIRE(next.service.load());
  const auto read = set_of({permission::AlertRead});
  const auto address = [](int i) {
    return ip("10.0." + std::to_string(i / 256) + "." + std::to_string(i % 256));
  };
  for (int i : {0, 1, 7, 150, 299}) {
    const auto& t = pinned[static_cast<std::size_t>(i)];
    CHECK(next.auth.decide(t.value, address(i), read, t0).allowed());
    CHECK(next.auth.decide(t.value, address(i + 1), read, t0).outcome ==
          tokenapi::verdict::address_not_allowed);
  }
  CHECK(next.auth.decide(two.value, ip("192.0.2.9"), read, t0).allowed());
  CHECK(next.auth.decide(two.value, address(7), read, t0).allowed());
  CHECK(next.auth.decide(two.value, address(8), read, t0).outcome ==
        tokenapi::verdict::address_not_allowed);
}

TEST_CASE_METHOD(api_world, "a fleet snapshot's tokens decide, change and go like any other",
                 "[service][fleet]") {
  // A sidecar joining a fleet receives every token as a snapshot's change (held compact when
  // it has no lifecycle), then the log's changes to them.
  restarted joined(store, clock);
  const auto change_of = [&](const issued_token& t) {
    auto record = store.get(t.id);
    REQUIRE(record);
    REQUIRE(*record);
    return store::replicated_change{t.id, std::nullopt, **record, true};
  };
  const auto reader = issue("reader", {permission::AlertRead}, {"10.0.0.0/8"});
  const auto other = issue("other", {permission::AlertRead});
  joined.service.apply(change_of(reader));
  joined.service.apply(change_of(other));
  joined.service.apply(change_of(admin));
  const auto read = set_of({permission::AlertRead});
  CHECK(joined.auth.decide(reader.value, ip("10.1.1.1"), read, t0).allowed());
  CHECK(joined.auth.decide(reader.value, ip("192.0.2.1"), read, t0).outcome ==
        tokenapi::verdict::address_not_allowed);
  CHECK(joined.as(admin.value).get("/api-tokens/self").status == 200);

  // The log then rotates one and deletes the other.
  auto rotation = as_admin().post("/api-tokens/" + reader.id + "/rotate");
  REQUIRE(rotation.status == 200);
  auto rotated = store.get(reader.id);
  REQUIRE(rotated);
  REQUIRE(*rotated);
  joined.service.apply({reader.id, tokenapi::digest_of(reader.value), **rotated});
  REQUIRE(as_admin().del("/api-tokens/" + other.id).status == 204);
  joined.service.apply({other.id, tokenapi::digest_of(other.value), std::nullopt});
  CHECK(joined.auth.decide(rotation.value(), ip("10.1.1.1"), read, t0).allowed());
  CHECK(joined.auth.decide(reader.value, ip("10.1.1.1"), read, t0).outcome ==
        tokenapi::verdict::unknown_key); // the replaced value, its compact record dropped
  CHECK(joined.auth.decide(other.value, ip("10.1.1.1"), read, t0).outcome ==
        tokenapi::verdict::unknown_key);
  CHECK(joined.auth.size() == 2);
}
