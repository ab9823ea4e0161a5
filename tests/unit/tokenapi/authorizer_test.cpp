#include "tokenapi/authorizer.hpp"

#include "tests/support/catch_tokenapi.hpp"
#include "tokenapi/token.hpp"
#include "tokenapi/token_value.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <string>

using namespace tokengate;
using namespace tokengate::tokenapi;
using namespace std::chrono_literals;
using test::ip;
using test::new_value;
using test::set_of;
using test::t0;

namespace {

// An authorizer and a way to publish tokens into it.
struct fixture {
  authorizer auth;
  const ip_address home = ip("10.1.2.3");

  // Publishes a token under a fresh value and returns the value.
  std::string publish(std::string id, permission_set permissions,
                      std::vector<std::string_view> cidrs = {},
                      std::optional<timestamp> expires_at = std::nullopt) {
    token t;
    t.id = std::move(id);
    t.name = "token " + t.id;
    t.permissions = permissions;
    for (auto c : cidrs)
      t.allowed_cidr_blocks.push_back(*cidr_block::parse(c));
    t.expires_at = expires_at;
    const auto value = new_value();
    auth.publish(digest_of(value), auth_entry::from(t));
    return value;
  }

  decision decide(std::optional<std::string_view> key, permission_set required = {},
                  timestamp now = t0) const {
    return auth.decide(key, home, required, now);
  }
};

std::string flip_last(std::string v) {
  v.back() = v.back() == 'a' ? 'b' : 'a';
  return v;
}

} // namespace

TEST_CASE_METHOD(fixture, "a live key holding the permissions is allowed", "[authorizer]") {
  const auto key = publish("a", set_of({permission::AlertRead, permission::RuleRead}));
  auto d = decide(key, set_of({permission::AlertRead}));
  CHECK(d.outcome == verdict::allow);
  CHECK(d.allowed());
  CHECK(d.status() == 200);
  REQUIRE(d.token);
  CHECK(d.token->id() == "a");
  CHECK(d.token->permissions_header() == "AlertRead,RuleRead");

  CHECK(decide(key).allowed()); // an empty requirement: any valid key
  CHECK(decide(key, set_of({permission::AlertRead, permission::RuleRead})).allowed());
}

TEST_CASE_METHOD(fixture, "no key is 401", "[authorizer]") {
  publish("a", permission_set::all());
  auto d = decide(std::nullopt);
  CHECK(d.outcome == verdict::missing_key);
  CHECK(d.status() == 401);
  CHECK(d.message(home) == "missing X-API-Key header");
  CHECK_FALSE(d.token);
}

TEST_CASE_METHOD(fixture, "a malformed key is 401 without a lookup", "[authorizer]") {
  const auto key = publish("a", permission_set::all());
  for (std::string bad : {std::string(), std::string("tg_"), std::string("Bearer ") + key,
                          key + " ", flip_last(key), std::string("not a key")}) {
    INFO('"' << bad << '"');
    auto d = decide(bad);
    CHECK(d.outcome == verdict::malformed_key);
    CHECK(d.status() == 401);
    CHECK(d.message(home) == "malformed API key");
  }

  // Even a malformed key that is in the index is refused on its shape alone.
  token t;
  t.id = "planted";
  t.permissions = permission_set::all();
  auth.publish(digest_of("tg_planted"), auth_entry::from(t));
  CHECK(decide("tg_planted").outcome == verdict::malformed_key);
}

TEST_CASE_METHOD(fixture, "a well-formed key that names no token is 401", "[authorizer]") {
  publish("a", permission_set::all());
  const auto stranger = new_value();
  auto d = decide(stranger);
  CHECK(d.outcome == verdict::unknown_key);
  CHECK(d.status() == 401);
  CHECK(d.message(home) == "invalid API key");
  CHECK(d.message(home).find(stranger) == std::string::npos);
}

TEST_CASE_METHOD(fixture, "an expired key is 401 from the second it expires", "[authorizer]") {
  const auto key = publish("a", permission_set::all(), {}, t0 + 10s);
  CHECK(decide(key, {}, t0 + 9s).allowed());
  auto at_expiry = decide(key, {}, t0 + 10s);
  CHECK(at_expiry.outcome == verdict::expired_key);
  CHECK(at_expiry.status() == 401);
  CHECK(at_expiry.message(home) == "API key has expired");
  CHECK(decide(key, {}, t0 + 1h).outcome == verdict::expired_key);
  // Expiry comes before the address and the permissions.
  CHECK(auth.decide(key, ip("192.0.2.1"), permission_set::all(), t0 + 10s).outcome ==
        verdict::expired_key);
}

TEST_CASE_METHOD(fixture, "a key used from outside its CIDR blocks is 403 naming the address",
                 "[authorizer]") {
  const auto key = publish("a", permission_set::all(), {"10.0.0.0/8", "2001:db8::/32"});
  CHECK(auth.decide(key, ip("10.200.0.1"), {}, t0).allowed());
  CHECK(auth.decide(key, ip("::ffff:10.200.0.1"), {}, t0).allowed());
  CHECK(auth.decide(key, ip("2001:db8::5"), {}, t0).allowed());

  auto outside = auth.decide(key, ip("192.0.2.1"), {}, t0);
  CHECK(outside.outcome == verdict::address_not_allowed);
  CHECK(outside.status() == 403);
  CHECK(outside.message(ip("192.0.2.1")) == "this API key may not be used from 192.0.2.1");
  auto outside6 = auth.decide(key, ip("2001:db9::1"), {}, t0);
  CHECK(outside6.outcome == verdict::address_not_allowed);
  CHECK(outside6.message(ip("2001:db9::1")) == "this API key may not be used from 2001:db9::1");

  const auto anywhere = publish("b", permission_set::all());
  CHECK(auth.decide(anywhere, ip("192.0.2.1"), {}, t0).allowed());
  CHECK(auth.decide(anywhere, ip("::1"), {}, t0).allowed());
}

TEST_CASE_METHOD(fixture, "a key lacking a permission is 403 naming what it lacks",
                 "[authorizer]") {
  const auto key = publish("a", set_of({permission::AlertRead}));
  auto one = decide(key, set_of({permission::AlertRead, permission::AlertModify}));
  CHECK(one.outcome == verdict::missing_permission);
  CHECK(one.status() == 403);
  CHECK(one.missing == set_of({permission::AlertModify}));
  CHECK(one.message(home) == "API key lacks the permission AlertModify");

  auto two = decide(key, set_of({permission::RuleRead, permission::AlertModify}));
  CHECK(two.message(home) == "API key lacks the permissions AlertModify, RuleRead");
}

TEST_CASE_METHOD(fixture, "publishing under a new digest retires the replaced one",
                 "[authorizer]") {
  const auto old_key = publish("a", permission_set::all());
  const auto old_digest = digest_of(old_key);
  const auto new_key = new_value();
  token t;
  t.id = "a";
  t.permissions = permission_set::all();
  auth.publish(digest_of(new_key), auth_entry::from(t), &old_digest);

  CHECK(decide(old_key).outcome == verdict::unknown_key);
  CHECK(decide(new_key).allowed());
  CHECK(auth.size() == 1);
  CHECK(auth.find(old_digest) == nullptr);
}

TEST_CASE_METHOD(fixture, "publishing again under the same digest replaces the token",
                 "[authorizer]") {
  const auto key = publish("a", set_of({permission::AlertRead}));
  token t;
  t.id = "a";
  t.permissions = set_of({permission::RuleRead});
  auto d = digest_of(key);
  auth.publish(d, auth_entry::from(t), &d);
  CHECK(decide(key, set_of({permission::RuleRead})).allowed());
  CHECK(decide(key, set_of({permission::AlertRead})).outcome == verdict::missing_permission);
  CHECK(auth.size() == 1);
}

TEST_CASE_METHOD(fixture, "a removed token's key is unknown", "[authorizer]") {
  const auto key = publish("a", permission_set::all());
  const auto other = publish("b", permission_set::all());
  auth.remove(digest_of(key));
  CHECK(decide(key).outcome == verdict::unknown_key);
  CHECK(decide(other).allowed());
  CHECK(auth.size() == 1);
  auth.remove(digest_of(key)); // twice is harmless
  CHECK(auth.size() == 1);
}

TEST_CASE_METHOD(fixture, "usage is reported once per token with its latest second",
                 "[authorizer]") {
  const auto a = publish("a", permission_set::all());
  const auto b = publish("b", permission_set::all());
  CHECK(auth.take_usage().empty());

  REQUIRE(decide(a, {}, t0).allowed());
  REQUIRE(decide(a, {}, t0 + 1s).allowed());
  REQUIRE(decide(b, {}, t0 + 1s).allowed());
  REQUIRE(decide(a, {}, t0 + 2s).allowed());

  auto notes = auth.take_usage();
  std::sort(notes.begin(), notes.end(), [](auto& x, auto& y) { return x.id < y.id; });
  REQUIRE(notes.size() == 2);
  CHECK(notes[0].id == "a");
  CHECK(notes[0].at == (t0 + 2s).time_since_epoch().count());
  CHECK(notes[1].id == "b");
  CHECK(notes[1].at == (t0 + 1s).time_since_epoch().count());

  CHECK(auth.take_usage().empty());
  // Another use in a second already reported is not news.
  REQUIRE(decide(a, {}, t0 + 2s).allowed());
  CHECK(auth.take_usage().empty());
  // A use in a later second is.
  REQUIRE(decide(a, {}, t0 + 3s).allowed());
  notes = auth.take_usage();
  REQUIRE(notes.size() == 1);
  CHECK(notes[0].id == "a");
  CHECK(notes[0].at == (t0 + 3s).time_since_epoch().count());
  CHECK(auth.find(digest_of(a))->last_used() == (t0 + 3s).time_since_epoch().count());
}

TEST_CASE_METHOD(fixture, "usage that could not be written is given again by the next take, once",
                 "[authorizer]") {
  const auto a = publish("a", permission_set::all());
  const auto b = publish("b", permission_set::all());
  REQUIRE(decide(a, {}, t0 + 1s).allowed());
  REQUIRE(decide(b, {}, t0 + 1s).allowed());
  REQUIRE(auth.take_usage().size() == 2);
  // The store refused the notes; meanwhile a is used again.
  REQUIRE(decide(a, {}, t0 + 2s).allowed());
  auth.usage_not_written();

  auto notes = auth.take_usage();
  std::sort(notes.begin(), notes.end(), [](auto& x, auto& y) { return x.id < y.id; });
  REQUIRE(notes.size() == 2); // a once, at its latest use
  CHECK(notes[0].id == "a");
  CHECK(notes[0].at == (t0 + 2s).time_since_epoch().count());
  CHECK(notes[1].id == "b");
  CHECK(notes[1].at == (t0 + 1s).time_since_epoch().count());
  // Written this time: nothing comes back.
  CHECK(auth.take_usage().empty());
}

TEST_CASE_METHOD(fixture, "refused keys leave no usage behind", "[authorizer]") {
  const auto key = publish("a", permission_set::all(), {}, t0 + 1s);
  (void)decide(std::nullopt);
  (void)decide(flip_last(key));
  (void)decide(new_value());
  (void)decide(key, {}, t0 + 1s); // expired
  CHECK(auth.take_usage().empty());
  CHECK(auth.find(digest_of(key))->last_used() == 0);
}

namespace {

// Tokens as the store hands them over at start-up: each with a value and its digest.
struct loaded_fixture : fixture {
  std::vector<token> page;
  std::vector<std::string> values;

  std::string add(std::string id, permission_set permissions,
                  std::vector<std::string_view> cidrs = {},
                  std::optional<timestamp> expires_at = std::nullopt) {
    auto& t = page.emplace_back();
    t.id = std::move(id);
    t.name = "loaded " + t.id;
    t.permissions = permissions;
    for (auto c : cidrs)
      t.allowed_cidr_blocks.push_back(*cidr_block::parse(c));
    t.expires_at = expires_at;
    values.push_back(new_value());
    t.value_digest = digest_of(values.back());
    return values.back();
  }
};

} // namespace

TEST_CASE_METHOD(loaded_fixture, "tokens loaded at start-up decide as published ones do",
                 "[authorizer][load]") {
  const auto reader = add("r", set_of({permission::AlertRead, permission::RuleRead}));
  const auto fenced = add("f", set_of({permission::AlertRead}), {"10.0.0.0/8"});
  const auto expiring = add("e", set_of({permission::AlertRead}), {}, t0 + 10s);
  const auto same_grant = add("s", set_of({permission::AlertRead, permission::RuleRead}));
  auth.load(page);
  CHECK(auth.size() == 4);

  auto d = decide(reader, set_of({permission::AlertRead}));
  CHECK(d.allowed());
  REQUIRE(d.token);
  CHECK(d.token->id() == "r");
  CHECK(d.token->name() == "loaded r");
  CHECK(d.token->permissions_header() == "AlertRead,RuleRead");
  CHECK(decide(same_grant, set_of({permission::RuleRead})).token->name() == "loaded s");
  CHECK(decide(reader, set_of({permission::UserRead})).outcome == verdict::missing_permission);

  CHECK(decide(fenced).allowed());
  CHECK(auth.decide(fenced, ip("192.0.2.1"), {}, t0).outcome == verdict::address_not_allowed);
  CHECK(decide(expiring, {}, t0 + 9s).allowed());
  CHECK(decide(expiring, {}, t0 + 10s).outcome == verdict::expired_key);
  CHECK(decide(new_value()).outcome == verdict::unknown_key);
}

TEST_CASE_METHOD(loaded_fixture, "a loaded token can be replaced, rotated and removed",
                 "[authorizer][load]") {
  const auto kept = add("k", set_of({permission::AlertRead}));
  const auto changed = add("c", set_of({permission::AlertRead}));
  const auto rotated = add("o", set_of({permission::AlertRead}));
  const auto removed = add("x", set_of({permission::AlertRead}));
  auth.load(page);
  const auto before = decide(removed);
  REQUIRE(before.allowed());

  token t;
  t.id = "c";
  t.name = "changed";
  t.permissions = set_of({permission::RuleRead});
  const auto changed_digest = digest_of(changed);
  auth.publish(changed_digest, auth_entry::from(t), &changed_digest);
  const auto rotated_digest = digest_of(rotated);
  const auto new_value_of_rotated = new_value();
  t.id = "o";
  t.name = "rotated";
  auth.publish(digest_of(new_value_of_rotated), auth_entry::from(t), &rotated_digest);
  auth.remove(digest_of(removed));

  CHECK(decide(kept).allowed());
  CHECK(decide(changed, set_of({permission::AlertRead})).outcome == verdict::missing_permission);
  CHECK(decide(changed, set_of({permission::RuleRead})).token->name() == "changed");
  CHECK(decide(rotated).outcome == verdict::unknown_key);
  CHECK(decide(new_value_of_rotated).token->name() == "rotated");
  CHECK(decide(removed).outcome == verdict::unknown_key);
  CHECK(auth.size() == 3);
  // A decision taken before the removal still reads the token it was made on.
  CHECK(before.token->id() == "x");
  CHECK(before.token->name() == "loaded x");
}

TEST_CASE_METHOD(loaded_fixture,
                 "tokens removed by id lose every value of theirs, loaded or published",
                 "[authorizer][load]") {
  const auto kept = add("k", set_of({permission::AlertRead}));
  const auto loaded = add("x", set_of({permission::AlertRead}));
  auth.load(page);
  token t;
  t.id = "p";
  t.name = "rotated, in its overlap";
  t.permissions = set_of({permission::AlertRead});
  const auto replaced = new_value();
  const auto current = new_value();
  t.value_digest = digest_of(current);
  t.previous_digest = digest_of(replaced);
  t.previous_expires_at = t0 + 1h;
  auth.publish(t.value_digest, auth_entry::from(t));
  REQUIRE(decide(replaced).allowed());
  REQUIRE(decide(current).allowed());

  const std::vector<std::string> ids{"x", "p", "not-held"};
  auth.remove_tokens(ids);
  CHECK(decide(kept).allowed());
  CHECK(decide(loaded).outcome == verdict::unknown_key);
  CHECK(decide(replaced).outcome == verdict::unknown_key);
  CHECK(decide(current).outcome == verdict::unknown_key);
  CHECK(auth.size() == 1);
}

TEST_CASE_METHOD(loaded_fixture, "loading replaces a token of the same digest, page after page",
                 "[authorizer][load]") {
  const auto key = add("first", set_of({permission::AlertRead}));
  auth.load(page);
  page.back().id = "second";
  page.back().permissions = set_of({permission::RuleRead});
  auth.load(page);
  CHECK(auth.size() == 1);
  CHECK(decide(key).token->id() == "second");
  CHECK(decide(key, set_of({permission::RuleRead})).allowed());
}

TEST_CASE_METHOD(loaded_fixture, "use of a loaded token is noted and reported",
                 "[authorizer][load]") {
  const auto key = add("a", permission_set::all());
  page.back().last_used_at = t0 - 1h;
  auth.load(page);
  CHECK(auth.find(digest_of(key))->last_used() == (t0 - 1h).time_since_epoch().count());
  REQUIRE(decide(key, {}, t0 + 5s).allowed());
  auto notes = auth.take_usage();
  REQUIRE(notes.size() == 1);
  CHECK(notes[0].id == "a");
  CHECK(notes[0].at == (t0 + 5s).time_since_epoch().count());
  CHECK(auth.find(digest_of(key))->last_used() == (t0 + 5s).time_since_epoch().count());
}

TEST_CASE_METHOD(fixture, "an expiry far in the future is honoured as never passing",
                 "[authorizer]") {
  const auto far =
      timestamp(std::chrono::sys_days{std::chrono::year{9999} / 12 / 31}.time_since_epoch());
  const auto key = publish("a", permission_set::all(), {}, far);
  CHECK(decide(key, {}, t0 + 24h * 365 * 50).allowed());
  const auto past = publish("b", permission_set::all(), {}, timestamp(std::chrono::seconds(-5)));
  CHECK(decide(past).outcome == verdict::expired_key);
}

TEST_CASE_METHOD(loaded_fixture,
                 "a token loaded within a rotation's overlap answers to both values",
                 "[authorizer][load][rotation]") {
  const auto plain = add("p", set_of({permission::AlertRead}));
  const auto current = add("r", set_of({permission::AlertRead}), {}, t0 + 1h);
  const auto replaced = new_value();
  page.back().previous_digest = digest_of(replaced);
  page.back().previous_expires_at = t0 + 60s;
  const auto limited = add("l", set_of({permission::AlertRead}));
  page.back().rate_limit = rate_limit{2, 60};
  auth.load(page);
  CHECK(auth.size() == 3);
  CHECK(auth.count_expiring(t0, 2h) == 1);

  const auto with_new = decide(current);
  const auto with_old = decide(replaced, {}, t0 + 59s);
  REQUIRE(with_new.allowed());
  REQUIRE(with_old.allowed());
  CHECK(with_old.previous_value);
  CHECK(with_old.token->id() == "r");
  CHECK(with_old.token->previous_expires_at() == (t0 + 60s).time_since_epoch().count());
  CHECK(decide(replaced, {}, t0 + 60s).outcome == verdict::unknown_key);

  const auto d = decide(limited);
  REQUIRE(d.allowed());
  CHECK(d.token->rate_requests() == 2);
  CHECK(d.token->take_rate(t0).allowed);
  CHECK(d.token->take_rate(t0).allowed);
  CHECK_FALSE(d.token->take_rate(t0).allowed);
  CHECK(decide(plain).token->rate_requests() == 0);
  CHECK(decide(plain).token->take_rate(t0).allowed);

  auth.remove(digest_of(current));
  CHECK(decide(replaced, {}, t0 + 1s).outcome == verdict::unknown_key);
  CHECK(auth.size() == 2);
}

TEST_CASE_METHOD(fixture, "past fresh_until every key is refused as stale, until it is moved",
                 "[authorizer]") {
  const auto value = publish("t1", set_of({permission::AlertRead}));
  const auto now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
  const auto allowed = [&] {
    return auth.decide(value, home, set_of({permission::AlertRead}), t0).outcome;
  };
  auth.fresh_until(now_ms + 60'000); // a sync a moment ago, a bound of a minute
  CHECK(allowed() == verdict::allow);
  auth.fresh_until(now_ms - 1); // no sync since the bound passed
  CHECK(allowed() == verdict::stale_tokens);
  CHECK(auth.decide("tg_not-even-well-formed", home, {}, t0).outcome == verdict::malformed_key);
  auth.fresh_until(now_ms + 60'000); // a sync again
  CHECK(allowed() == verdict::allow);
}
