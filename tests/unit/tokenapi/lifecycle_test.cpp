// The key lifecycle in the domain (README "Key lifecycle"): a rotated token's replaced value in
// the authorizer and its store payload, and the rate window's counting.
#include "tokenapi/authorizer.hpp"

#include "tests/support/catch_tokenapi.hpp"
#include "tokenapi/rate_window.hpp"
#include "tokenapi/token.hpp"
#include "tokenapi/token_json.hpp"
#include "tokenapi/token_value.hpp"

#include <catch2/catch.hpp>

#include <atomic>
#include <thread>
#include <vector>

using namespace tokengate;
using namespace tokengate::tokenapi;
using namespace std::chrono_literals;
using test::ip;
using test::new_value;
using test::t0;

namespace {

struct overlap_fixture {
  authorizer auth;
  token t;
  std::string old_value = new_value();
  std::string new_value_ = new_value();

  overlap_fixture() {
    t.id = "tok";
    t.name = "rotated";
    t.permissions.insert(permission::AlertRead);
    t.value_digest = digest_of(old_value);
    auth.publish(t.value_digest, auth_entry::from(t));
  }
  // Rotates to a new value, keeping the old one for `overlap` from t0.
  void rotate(std::chrono::seconds overlap) {
    const auto replaced = t.value_digest;
    t.value_digest = digest_of(new_value_);
    t.previous_digest = replaced;
    t.previous_expires_at = t0 + overlap;
    auth.publish(t.value_digest, auth_entry::from(t), &replaced);
  }
  decision decide(const std::string& key, timestamp now = t0) const {
    return auth.decide(key, ip("10.0.0.1"), {}, now);
  }
};

} // namespace

TEST_CASE_METHOD(overlap_fixture, "during an overlap both values are the same token",
                 "[authorizer][rotation]") {
  rotate(60s);
  const auto with_new = decide(new_value_);
  const auto with_old = decide(old_value, t0 + 59s);
  REQUIRE(with_new.allowed());
  REQUIRE(with_old.allowed());
  CHECK(with_new.token == with_old.token);
  CHECK_FALSE(with_new.previous_value);
  CHECK(with_old.previous_value);
  CHECK(with_old.token->previous_last_used() == (t0 + 59s).time_since_epoch().count());
  CHECK(auth.size() == 1);

  const auto after = decide(old_value, t0 + 60s);
  CHECK(after.outcome == verdict::unknown_key);
  CHECK_FALSE(after.token);
  CHECK(decide(new_value_, t0 + 60s).allowed());
}

TEST_CASE_METHOD(overlap_fixture, "a rotation without overlap, or a removal, drops both digests",
                 "[authorizer][rotation]") {
  rotate(60s);
  const auto third = new_value();
  const auto replaced = t.value_digest;
  t.value_digest = digest_of(third);
  t.previous_digest.reset();
  t.previous_expires_at.reset();
  auth.publish(t.value_digest, auth_entry::from(t), &replaced);
  CHECK(decide(old_value).outcome == verdict::unknown_key);
  CHECK(decide(new_value_).outcome == verdict::unknown_key);
  CHECK(decide(third).allowed());

  rotate(60s); // third is now the replaced value
  auth.remove(t.value_digest);
  CHECK(decide(third).outcome == verdict::unknown_key);
  CHECK(decide(new_value_).outcome == verdict::unknown_key);
  CHECK(auth.size() == 0);
}

TEST_CASE("the payload keeps the replaced value's digest and the rate limit, never a value",
          "[json][rotation][rate]") {
  token t;
  t.id = "tok";
  t.name = "n";
  t.created_at = t.updated_at = t0;
  const auto old_value = new_value();
  t.value_digest = digest_of(new_value());
  t.previous_digest = digest_of(old_value);
  t.previous_expires_at = t0 + 3600s;
  t.rate_limit = rate_limit{100, 60};
  const auto payload = encode_payload(t);
  CHECK(payload.find("tg_") == std::string::npos);
  const auto back = decode_record({t.id, t.value_digest, payload, std::nullopt});
  REQUIRE(back);
  CHECK(back->previous_digest == t.previous_digest);
  CHECK(back->previous_expires_at == t.previous_expires_at);
  CHECK(back->rate_limit == t.rate_limit);

  token plain = t; // Panther's token: none of the new fields in the payload
  plain.previous_digest.reset();
  plain.previous_expires_at.reset();
  plain.rate_limit.reset();
  const auto plain_payload = encode_payload(plain);
  CHECK(plain_payload.find("previous") == std::string::npos);
  CHECK(plain_payload.find("rate") == std::string::npos);
}

TEST_CASE("a rate window counts N per window, then refuses until the next", "[rate]") {
  rate_window w;
  for (std::uint32_t i = 0; i < 3; ++i) {
    const auto o = w.take(3, 60, 120);
    CHECK(o.allowed);
    CHECK(o.remaining == 2 - i);
    CHECK(o.reset_seconds == 60);
  }
  const auto refused = w.take(3, 60, 150);
  CHECK_FALSE(refused.allowed);
  CHECK(refused.remaining == 0);
  CHECK(refused.reset_seconds == 30);
  const auto next = w.take(3, 60, 180);
  CHECK(next.allowed);
  CHECK(next.remaining == 2);
  // A late clock read counts in the newer window rather than resetting it.
  CHECK(w.take(3, 60, 179).allowed);
  CHECK(w.take(3, 60, 180).allowed);
  CHECK_FALSE(w.take(3, 60, 179).allowed);
}

TEST_CASE("a rate window is exact under concurrency", "[rate]") {
  rate_window w;
  std::atomic<int> allowed{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 4; ++i)
    threads.emplace_back([&] {
      for (int n = 0; n < 10'000; ++n)
        allowed += w.take(12'345, 3600, 7200).allowed;
    });
  for (auto& th : threads)
    th.join();
  CHECK(allowed == 12'345);
}
