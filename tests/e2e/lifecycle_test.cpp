// The key lifecycle with the real binary (README "Key lifecycle"): a rotation's overlap and a
// rate limit are stored with the token, so kill -9 during an overlap keeps both values working.
#include "tests/e2e/gate_process.hpp"
#include "tests/support/temp_dir.hpp"
#include "tests/support/test_upstream.hpp"

#include <boost/json.hpp>
#include <catch2/catch.hpp>

using namespace tokengate;
using test::call;
using test::gate_process;

TEST_CASE("kill -9 during a rotation's overlap keeps both values and the rate limit",
          "[e2e][durability][lifecycle]") {
  test::temp_dir dir;
  test::test_upstream upstream;
  std::string admin, id, old_value, new_value, until;
  {
    gate_process gate(dir.path(), upstream.port());
    admin = gate.admin_key();
    auto created = call(gate.port(), "POST", "/api-tokens", admin,
                        R"({"name":"ci","permissions":["AlertRead"],)"
                        R"("rateLimit":{"requests":1000,"perSeconds":86400}})");
    REQUIRE(created.status == 200);
    id = std::string(created.json().at("id").as_string());
    old_value = std::string(created.json().at("value").as_string());
    auto rotated = call(gate.port(), "POST", "/api-tokens/" + id + "/rotate", admin,
                        R"({"previousValueValidFor": 3600})");
    REQUIRE(rotated.status == 200);
    new_value = std::string(rotated.json().at("value").as_string());
    until = std::string(rotated.json().at("previousValueExpiresAt").as_string());
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
