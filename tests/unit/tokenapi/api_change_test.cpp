// /api-tokens as a client sees it, changing tokens: create, self, rotate, delete and update
// (README "The token API").
#include "tests/unit/tokenapi/api_checks.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <set>
#include <string>

using namespace tokengate;
using namespace tokengate::test;
using tokenapi::permission;

// --- create --------------------------------------------------------------------------------------

TEST_CASE_METHOD(api_world, "create answers 200 with the new token and its value",
                 "[api][create]") {
  auto r = as_admin().post("/api-tokens", R"({"name":"ci deploy",
      "permissions":["RuleRead","AlertRead"],
      "allowedCIDRBlocks":["10.1.2.3/8","2001:db8::1"]})");
  REQUIRE(r.status == 200);
  CHECK(keys_of(r.object()) == std::set<std::string>{"allowedCIDRBlocks", "createdAt", "createdBy",
                                                     "id", "name", "permissions", "updatedAt",
                                                     "updatedBy", "value"});
  CHECK(tokenapi::looks_like_id(r.id()));
  CHECK(tokenapi::well_formed(r.value()));
  CHECK(r.text("name") == "ci deploy");
  CHECK(r.object().at("permissions") == json::array{"AlertRead", "RuleRead"});
  CHECK(r.object().at("allowedCIDRBlocks") == json::array{"10.0.0.0/8", "2001:db8::1/128"});
  CHECK(r.text("createdAt") == "2026-11-28T02:41:26Z");
  CHECK(r.text("updatedAt") == "2026-11-28T02:41:26Z");
  CHECK(r.object().at("createdBy") == actor(admin.id, "api-token"));
  CHECK(r.object().at("updatedBy") == actor(admin.id, "api-token"));

  // Reading it back shows the same token without its value.
  auto got = as_admin().get(path_of(r));
  REQUIRE(got.status == 200);
  auto expected = r.object();
  expected.erase("value");
  CHECK(got.object() == expected);

  // The value works at once, from the allowed network only, and the store never holds it.
  CHECK(as(r.value()).from("10.9.9.9").get("/api-tokens/self").id() == r.id());
  CHECK(as(r.value()).from("192.0.2.1").get("/api-tokens/self").status == 403);
  CHECK_FALSE(store_mentions(r.value()));
}

TEST_CASE_METHOD(api_world, "create takes an optional expiry", "[api][create]") {
  auto expiring = as_admin().post(
      "/api-tokens", R"({"name":"temp","permissions":[],"expiresAt":"2026-11-29T03:41:26+01:00"})");
  REQUIRE(expiring.status == 200);
  CHECK(expiring.text("expiresAt") == "2026-11-29T02:41:26Z");

  auto forever =
      as_admin().post("/api-tokens", R"({"name":"forever","permissions":[],"expiresAt":null})");
  REQUIRE(forever.status == 200);
  CHECK_FALSE(forever.has("expiresAt"));

  auto now = as_admin().post(
      "/api-tokens", R"({"name":"now","permissions":[],"expiresAt":"2026-11-28T02:41:26Z"})");
  CHECK(now.status == 400);
  CHECK(now.message() == "\"expiresAt\" must lie in the future (in whole seconds)");

  // The expiring token works until its second comes, then is refused.
  clock.advance(24h - 1s);
  CHECK(as(expiring.value()).get("/api-tokens/self").status == 200);
  clock.advance(1s);
  auto late = as(expiring.value()).get("/api-tokens/self");
  CHECK(late.status == 401);
  CHECK(late.message() == "API key has expired");
  CHECK(as(forever.value()).get("/api-tokens/self").status == 200);
}

TEST_CASE_METHOD(api_world, "create and update refuse bad bodies with 400", "[api][create]") {
  const auto target = issue("target", {permission::AlertRead});
  struct bad_body {
    std::string body, message;
  };
  for (const auto& b : std::vector<bad_body>{
           {"{", "request body is not valid JSON"},
           {"", "request body is not valid JSON"},
           {"[]", "request body must be a JSON object"},
           {R"({"permissions":[]})", "missing required field \"name\""},
           {R"({"name":"x"})", "missing required field \"permissions\""},
           {R"({"name":"x","permissions":["AlertRead","NukeEverything"]})",
            "unknown permission \"NukeEverything\""},
           {R"({"name":"x","permissions":[],"allowedCIDRBlocks":["10.0.0.0/33"]})",
            "invalid CIDR block \"10.0.0.0/33\""},
           {R"({"name":"x","permissions":[],"owner":"me"})", "unknown field \"owner\""},
       }) {
    INFO(b.body);
    for (auto r :
         {as_admin().post("/api-tokens", b.body), as_admin().post(path_of(target), b.body)}) {
      CHECK(r.status == 400);
      CHECK_THAT(r.message(), Catch::StartsWith(b.message));
    }
  }
  // A key pasted where a field name or a permission belongs is not sent back in the message.
  const auto key = test::new_value();
  for (const auto& body : {R"({"name":"x","permissions":[],")" + key + R"(":1})",
                           R"({"name":"x","permissions":[")" + key + R"("]})"}) {
    const auto r = as_admin().post("/api-tokens", body);
    CHECK(r.status == 400);
    CHECK(r.raw.find(key) == std::string::npos);
    CHECK_THAT(r.message(), Catch::Contains("\"tg_[redacted]\""));
  }
  CHECK(records().size() == 2);
  CHECK(as_admin().get(path_of(target)).text("name") == "target");
}

TEST_CASE_METHOD(api_world, "a caller cannot grant permissions it does not hold",
                 "[api][escalation]") {
  const auto limited =
      issue("limited", {permission::OrganizationAPITokenModify, permission::AlertRead});
  const auto target = issue("target", {permission::AlertRead});

  SECTION("on create") {
    auto r =
        as(limited).post("/api-tokens", spec_body("x", {"AlertRead", "RuleRead", "AlertModify"}));
    CHECK(r.status == 403);
    CHECK(r.message() ==
          "cannot grant permissions the caller does not hold: AlertModify, RuleRead");
    CHECK(records().size() == 3);

    auto within = as(limited).post("/api-tokens", spec_body("x", {"AlertRead"}));
    CHECK(within.status == 200);
  }
  SECTION("on update of another token") {
    auto r = as(limited).post(path_of(target), spec_body("x", {"AlertRead", "UserModify"}));
    CHECK(r.status == 403);
    CHECK(r.message() == "cannot grant permissions the caller does not hold: UserModify");
    auto unchanged = as_admin().get(path_of(target));
    CHECK(unchanged.text("name") == "target");
    CHECK(unchanged.object().at("permissions") == json::array{"AlertRead"});
  }
  SECTION("on update of itself") {
    auto r = as(limited).post(
        "/api-tokens/self",
        spec_body("me", {"OrganizationAPITokenModify", "AlertRead", "OrganizationAPITokenRead"}));
    CHECK(r.status == 403);
    CHECK(r.message() ==
          "cannot grant permissions the caller does not hold: OrganizationAPITokenRead");
    CHECK(as(limited).get("/api-tokens/self").object().at("permissions") ==
          json::array{"AlertRead", "OrganizationAPITokenModify"});
  }
}

TEST_CASE_METHOD(api_world,
                 "a caller may delete, and narrow by an update, a token that holds more than it "
                 "does, without gaining anything",
                 "[api][escalation]") {
  const auto limited = issue("limited", {permission::OrganizationAPITokenModify});
  const auto richer = issue("richer", {permission::AlertRead, permission::UserModify});
  const auto doomed = issue("doomed", {permission::AlertRead, permission::UserModify});

  // Narrowing to what the caller holds (here: nothing) is no grant.
  auto narrowed = as(limited).post(path_of(richer), spec_body("narrowed", {}));
  CHECK(narrowed.status == 200);
  CHECK_FALSE(narrowed.has("value"));
  CHECK(as_admin().get(path_of(richer)).object().at("permissions") == json::array{});
  // Keeping a permission it holds and the caller does not is a grant, and refused.
  auto kept = as(limited).post(path_of(doomed), spec_body("doomed", {"UserModify"}));
  CHECK(kept.status == 403);
  CHECK(kept.message() == "cannot grant permissions the caller does not hold: UserModify");

  CHECK(as(limited).del(path_of(doomed)).status == 204);
  CHECK(as_admin().get(path_of(doomed)).status == 404);
}

TEST_CASE_METHOD(api_world,
                 "a caller limited by CIDR blocks or an expiry may create tokens without them",
                 "[api][escalation]") {
  const auto fenced = issue("fenced", {permission::OrganizationAPITokenModify}, {"10.0.0.0/8"});
  const auto expiring =
      issue("expiring", {permission::OrganizationAPITokenModify}, {}, t0 + std::chrono::hours(1));

  auto from_fence =
      as(fenced).from("10.1.2.3").post("/api-tokens", spec_body("open", {"AlertRead"}));
  // Escalation is about permissions: AlertRead is not held, so that much is refused...
  CHECK(from_fence.status == 403);
  auto unfenced = as(fenced).from("10.1.2.3").post("/api-tokens", spec_body("open", {}));
  CHECK(unfenced.status == 200);
  CHECK(unfenced.object().at("allowedCIDRBlocks") == json::array{});
  // ...and the new token works from anywhere.
  CHECK(as(unfenced.value()).from("192.0.2.1").get("/api-tokens/self").status == 200);

  auto lasting = as(expiring).post("/api-tokens", spec_body("lasting", {}));
  CHECK(lasting.status == 200);
  CHECK_FALSE(lasting.has("expiresAt"));
}

TEST_CASE_METHOD(api_world, "a caller cannot rotate a token that holds more than it does",
                 "[api][escalation]") {
  const auto limited =
      issue("limited", {permission::OrganizationAPITokenModify, permission::AlertRead});
  const auto richer = issue("richer", {permission::AlertRead, permission::UserModify});

  auto r = as(limited).post(path_of(richer) + "/rotate");
  CHECK(r.status == 403);
  CHECK_THAT(r.message(), Catch::Contains("UserModify"));
  CHECK_FALSE(r.has("value"));
  CHECK(as(richer).get("/api-tokens/self").status == 200); // its value still works

  auto admin_rotation = as(limited).post(path_of(admin) + "/rotate");
  CHECK(admin_rotation.status == 403);
  CHECK(as_admin().get("/api-tokens/self").status == 200);

  const auto poorer = issue("poorer", {permission::AlertRead});
  CHECK(as(limited).post(path_of(poorer) + "/rotate").status == 200);
}

// --- self ----------------------------------------------------------------------------------------

TEST_CASE_METHOD(api_world, "self: reading and rotating need no permission", "[api][self]") {
  const auto plain = issue("plain", tokenapi::permission_set{});

  auto me = as(plain).get("/api-tokens/self");
  REQUIRE(me.status == 200);
  CHECK(me.id() == plain.id);
  CHECK(me.text("name") == "plain");
  CHECK_FALSE(me.has("value"));
  CHECK(as(plain).get(path_of(plain)).id() == plain.id); // its own id is self too

  auto rotated = as(plain).post("/api-tokens/self/rotate");
  REQUIRE(rotated.status == 200);
  CHECK(rotated.id() == plain.id);
  CHECK(tokenapi::well_formed(rotated.value()));
  CHECK(as(plain).get("/api-tokens/self").status == 401);
  CHECK(as(rotated.value()).get("/api-tokens/self").id() == plain.id);
}

TEST_CASE_METHOD(api_world, "self: updating and deleting need OrganizationAPITokenModify",
                 "[api][self]") {
  const auto plain = issue("plain", {permission::AlertRead});
  const std::string modify_missing = "API key lacks the permission OrganizationAPITokenModify";
  for (auto r : {as(plain).post("/api-tokens/self", spec_body("renamed", {"AlertRead"})),
                 as(plain).del("/api-tokens/self"), as(plain).del(path_of(plain))}) {
    CHECK(r.status == 403);
    CHECK(r.message() == modify_missing);
  }
  CHECK(as(plain).get("/api-tokens/self").text("name") == "plain");

  const auto modifier =
      issue("modifier", {permission::OrganizationAPITokenModify, permission::AlertRead});
  clock.advance(5s);
  auto updated =
      as(modifier).post("/api-tokens/self", spec_body("renamed", {"OrganizationAPITokenModify"}));
  REQUIRE(updated.status == 200);
  CHECK(updated.id() == modifier.id);
  CHECK(updated.text("name") == "renamed");
  CHECK(updated.object().at("permissions") == json::array{"OrganizationAPITokenModify"});
  CHECK(updated.object().at("updatedBy") == actor(modifier.id, "api-token"));
  CHECK(updated.text("updatedAt") == at(t0 + 5s));

  auto deleted = as(modifier).del("/api-tokens/self");
  CHECK(deleted.status == 204);
  CHECK(deleted.raw.empty());
  CHECK(as(modifier).get("/api-tokens/self").status == 401);
  CHECK(as_admin().get(path_of(modifier)).status == 404);
}

// --- rotate, delete, update ----------------------------------------------------------------------

TEST_CASE_METHOD(api_world, "rotation retires the old value and the new one works at once",
                 "[api][rotate]") {
  const auto t = issue("ci", {permission::AlertRead}, {"10.0.0.0/8"});
  clock.advance(30s);

  auto first = as_admin().post(path_of(t) + "/rotate");
  REQUIRE(first.status == 200);
  CHECK(first.id() == t.id);
  CHECK(first.value() != t.value);
  CHECK(tokenapi::well_formed(first.value()));
  CHECK(first.text("rotatedAt") == at(t0 + 30s));
  CHECK(first.text("createdAt") == at(t0));
  CHECK(first.text("name") == "ci");
  CHECK(first.object().at("permissions") == json::array{"AlertRead"});
  CHECK(first.object().at("allowedCIDRBlocks") == json::array{"10.0.0.0/8"});

  CHECK(as(t).from("10.0.0.1").get("/api-tokens/self").status == 401);
  CHECK(as(first.value()).from("10.0.0.1").get("/api-tokens/self").status == 200);

  clock.advance(30s);
  auto second = as_admin().post(path_of(t) + "/rotate");
  REQUIRE(second.status == 200);
  CHECK(second.text("rotatedAt") == at(t0 + 60s));
  CHECK(as(first.value()).from("10.0.0.1").get("/api-tokens/self").status == 401);
  CHECK(as(second.value()).from("10.0.0.1").get("/api-tokens/self").status == 200);

  auto got = as_admin().get(path_of(t));
  CHECK(got.text("rotatedAt") == at(t0 + 60s));
  CHECK_FALSE(got.has("value"));
  REQUIRE(records().size() == 2);
  CHECK(store.get(t.id).value()->value_digest == tokenapi::digest_of(second.value()));
  for (const auto& v : {t.value, first.value(), second.value()})
    CHECK_FALSE(store_mentions(v));
}

TEST_CASE_METHOD(api_world, "a deleted token's value fails at once", "[api][delete]") {
  const auto t = issue("doomed", {permission::AlertRead});
  const auto other = issue("other", {permission::AlertRead});
  REQUIRE(as(t).get("/api-tokens/self").status == 200);

  auto r = as_admin().del(path_of(t));
  CHECK(r.status == 204);
  CHECK(r.raw.empty());
  CHECK(as(t).get("/api-tokens/self").status == 401);
  CHECK(as(t).get("/api-tokens/self").message() == "invalid API key");
  CHECK(as_admin().get(path_of(t)).status == 404);
  CHECK(as_admin().del(path_of(t)).status == 404);
  auto ids = ids_on(as_admin().get("/api-tokens"));
  CHECK(std::find(ids.begin(), ids.end(), t.id) == ids.end());
  CHECK(as(other).get("/api-tokens/self").status == 200);
}

TEST_CASE_METHOD(api_world,
                 "update replaces name, permissions and blocks, and expiry only when given",
                 "[api][update]") {
  auto made = as_admin().post("/api-tokens", R"({"name":"ci",
      "permissions":["AlertRead","OrganizationAPITokenRead"],
      "allowedCIDRBlocks":["10.0.0.0/8"],"expiresAt":"2026-11-29T02:41:26Z"})");
  REQUIRE(made.status == 200);
  const auto value = made.value();
  REQUIRE(as(value).from("10.0.0.1").get("/api-tokens").status == 200);
  clock.advance(60s);

  auto r = as_admin().post(path_of(made), R"({"name":"renamed","permissions":["RuleRead"]})");
  REQUIRE(r.status == 200);
  CHECK(r.id() == made.id());
  CHECK(r.text("name") == "renamed");
  CHECK(r.object().at("permissions") == json::array{"RuleRead"});
  CHECK(r.object().at("allowedCIDRBlocks") == json::array{}); // absent means empty
  CHECK(r.text("expiresAt") == "2026-11-29T02:41:26Z");       // absent means unchanged
  CHECK(r.text("createdAt") == at(t0));
  CHECK(r.text("updatedAt") == at(t0 + 60s));
  CHECK(r.object().at("updatedBy") == actor(admin.id, "api-token"));
  CHECK_FALSE(r.has("value"));
  CHECK_FALSE(r.has("rotatedAt"));
  CHECK(as_admin().get(path_of(made)).object() == r.object());

  // The same value now works from anywhere, with the new permissions only.
  CHECK(as(value).from("192.0.2.1").get("/api-tokens/self").status == 200);
  CHECK(as(value).from("192.0.2.1").get("/api-tokens").status == 403);

  auto fenced = as_admin().post(path_of(made), R"({"name":"renamed","permissions":[],
      "allowedCIDRBlocks":["192.0.2.0/24"],"expiresAt":"2027-01-01T00:00:00Z"})");
  REQUIRE(fenced.status == 200);
  CHECK(fenced.text("expiresAt") == "2027-01-01T00:00:00Z");
  CHECK(as(value).from("192.0.2.200").get("/api-tokens/self").status == 200);
  CHECK(as(value).from("10.0.0.1").get("/api-tokens/self").status == 403);

  auto forever =
      as_admin().post(path_of(made), R"({"name":"renamed","permissions":[],"expiresAt":null})");
  REQUIRE(forever.status == 200);
  CHECK_FALSE(forever.has("expiresAt"));
  CHECK_FALSE(as_admin().get(path_of(made)).has("expiresAt"));
  clock.advance(24h * 400);
  CHECK(as(value).get("/api-tokens/self").status == 200);
}

TEST_CASE_METHOD(api_world, "an id that names no token is 404", "[api][not-found]") {
  for (std::string id : {"0f8fad5b-d9cb-469f-a165-70867728950e", "nope"}) {
    const auto path = "/api-tokens/" + id;
    INFO(path);
    for (auto r : {as_admin().get(path), as_admin().post(path, spec_body("x", {})),
                   as_admin().del(path), as_admin().post(path + "/rotate")}) {
      CHECK(r.status == 404);
      CHECK(r.message() == "api token not found");
    }
  }
  CHECK(records().size() == 1);
}

// --- an audit trail that cannot be written -------------------------------------------------------

namespace {

// An audit sink that is ready or not as the test says, and keeps what it is given.
struct switchable_audit final : tokenapi::audit_sink {
  void record(const tokenapi::audit_event& e) override { results.push_back(e.status); }
  bool ready() override { return up; }
  bool up = true;
  std::vector<unsigned> results;
};

} // namespace

TEST_CASE_METHOD(api_world,
                 "while the audit sink is not ready, every change is refused with 503 and nothing "
                 "changes, while reads are served",
                 "[api][audit]") {
  switchable_audit trail;
  tokenapi::api_handler api_audited{service, auth, clock, &trail};
  client c(api_audited, admin.value);
  const auto made = c.post("/api-tokens", spec_body("kept", {"AlertRead"}));
  REQUIRE(made.status == 200);
  const auto before = records();

  trail.up = false;
  const std::string message =
      "the audit trail cannot be written (audit_log_file): no change was made";
  for (const auto& r :
       {c.post("/api-tokens", spec_body("new", {"AlertRead"})),
        c.post("/api-tokens/" + made.id(), spec_body("renamed", {"AlertRead"})),
        c.post("/api-tokens/" + made.id() + "/rotate"), c.del("/api-tokens/" + made.id())}) {
    CHECK(r.status == 503);
    CHECK(r.message() == message);
  }
  CHECK(records().size() == before.size());
  CHECK(records().front().payload == before.front().payload);
  CHECK(records().back().payload == before.back().payload);
  CHECK(c.get("/api-tokens/" + made.id()).text("name") == "kept");
  CHECK(c.get("/api-tokens").status == 200);
  // The refused attempts are recorded as such.
  CHECK(trail.results == std::vector<unsigned>{200, 503, 503, 503, 503});

  trail.up = true;
  CHECK(c.del("/api-tokens/" + made.id()).status == 204);
}
