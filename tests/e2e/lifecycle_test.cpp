// The key lifecycle with the real binary (README "Key lifecycle"): a rotation's overlap and a
// rate limit are stored with the token, so kill -9 during an overlap keeps both values working;
// a restart keeps lastUsedAt but not previousValueLastUsedAt, which is never stored.
#include "tests/e2e/gate_process.hpp"
#include "tests/support/temp_dir.hpp"
#include "tests/support/test_upstream.hpp"

#include <boost/json.hpp>
#include <catch2/catch.hpp>

using namespace tokengate;
using test::call;
using test::gate_process;

namespace {

/// A token created with `body`, then rotated with an hour's overlap.
struct rotated_token {
  std::string id, old_value, new_value, until;
};

rotated_token create_and_rotate(const gate_process& gate, const std::string& admin,
                                const std::string& body) {
  rotated_token t;
  auto created = call(gate.port(), "POST", "/api-tokens", admin, body);
  REQUIRE(created.status == 200);
  t.id = std::string(created.json().at("id").as_string());
  t.old_value = std::string(created.json().at("value").as_string());
  auto rotated = call(gate.port(), "POST", "/api-tokens/" + t.id + "/rotate", admin,
                      R"({"previousValueValidFor": 3600})");
  REQUIRE(rotated.status == 200);
  t.new_value = std::string(rotated.json().at("value").as_string());
  t.until = std::string(rotated.json().at("previousValueExpiresAt").as_string());
  return t;
}

} // namespace

TEST_CASE("kill -9 during a rotation's overlap keeps both values and the rate limit",
          "[e2e][durability][lifecycle]") {
  test::temp_dir dir;
  test::test_upstream upstream;
  std::string admin, id, old_value, new_value, until;
  {
    gate_process gate(dir.path(), upstream.port());
    admin = gate.admin_key();
    const auto t = create_and_rotate(gate, admin,
                                     R"({"name":"ci","permissions":["AlertRead"],)"
                                     R"("rateLimit":{"requests":1000,"perSeconds":86400}})");
    id = t.id, old_value = t.old_value, new_value = t.new_value, until = t.until;
    gate.proc().signal(SIGKILL); // no chance to flush anything
    CHECK(gate.proc().wait(std::chrono::seconds(10)) == 128 + SIGKILL);
  }
  gate_process gate(dir.path(), upstream.port());
  auto with_old = call(gate.port(), "GET", "/alerts/1", old_value);
  CHECK(with_old.status == 200);
  CHECK(with_old.header("X-Token-Rotated") == "expires=" + until);
  CHECK(with_old.header("RateLimit-Policy") == R"("default";q=1000;w=86400)");
  auto with_new = call(gate.port(), "GET", "/alerts/1", new_value);
  CHECK(with_new.status == 200);
  CHECK_FALSE(with_new.header("X-Token-Rotated"));
  const auto t = call(gate.port(), "GET", "/api-tokens/" + id, admin).json();
  CHECK(t.at("previousValueExpiresAt").as_string() == until);
  CHECK(t.at("rateLimit").at("requests") == 1000);

  // Deleting ends both, and stays so after another kill -9.
  REQUIRE(call(gate.port(), "DELETE", "/api-tokens/" + id, admin).status == 204);
  gate.proc().signal(SIGKILL);
  CHECK(gate.proc().wait(std::chrono::seconds(10)) == 128 + SIGKILL);
  gate_process again(dir.path(), upstream.port());
  CHECK(call(again.port(), "GET", "/alerts/1", old_value).status == 401);
  CHECK(call(again.port(), "GET", "/alerts/1", new_value).status == 401);
}

TEST_CASE("after a restart the overlap goes on and lastUsedAt is kept, but "
          "previousValueLastUsedAt starts afresh",
          "[e2e][lifecycle]") {
  // README "Rotation with an overlap": previousValueLastUsedAt "is kept in memory like
  // lastUsedAt but, unlike it, not written to the store: it starts afresh when the sidecar
  // restarts"; README "Shutdown": SIGTERM "writes the pending lastUsedAt notes".
  test::temp_dir dir;
  test::test_upstream upstream;
  std::string admin, id, old_value, new_value, until, last_used;
  const auto token = [&](const gate_process& gate) {
    auto r = call(gate.port(), "GET", "/api-tokens/" + id, admin);
    REQUIRE(r.status == 200);
    return r.json().as_object();
  };
  {
    gate_process gate(dir.path(), upstream.port());
    admin = gate.admin_key();
    const auto t = create_and_rotate(gate, admin, R"({"name":"ci","permissions":["AlertRead"]})");
    id = t.id, old_value = t.old_value, new_value = t.new_value, until = t.until;
    CHECK_FALSE(token(gate).contains("previousValueLastUsedAt"));

    REQUIRE(call(gate.port(), "GET", "/alerts/1", old_value).status == 200);
    const auto used = token(gate);
    REQUIRE(used.contains("previousValueLastUsedAt"));
    CHECK(used.at("previousValueLastUsedAt").is_string());
    REQUIRE(used.contains("lastUsedAt"));
    last_used = std::string(used.at("lastUsedAt").as_string());
    CHECK(gate.terminate() == 0);
  }

  gate_process gate(dir.path(), upstream.port());
  const auto restarted = token(gate);
  CHECK(restarted.at("previousValueExpiresAt").as_string() == until);
  CHECK_FALSE(restarted.contains("previousValueLastUsedAt"));
  REQUIRE(restarted.contains("lastUsedAt"));
  CHECK(restarted.at("lastUsedAt").as_string() == last_used);

  auto with_old = call(gate.port(), "GET", "/alerts/1", old_value);
  CHECK(with_old.status == 200);
  CHECK(with_old.header("X-Token-Rotated") == "expires=" + until);
  const auto used_again = token(gate);
  REQUIRE(used_again.contains("previousValueLastUsedAt"));
  CHECK(used_again.at("previousValueLastUsedAt").is_string());
  CHECK(used_again.at("previousValueExpiresAt").as_string() == until);
  CHECK(call(gate.port(), "GET", "/alerts/1", new_value).status == 200);
  CHECK(gate.terminate() == 0);
}
