// /api-tokens as a client sees it: requests in, status and JSON out (README "The token API").
#include "tests/unit/tokenapi/api_fixture.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <set>
#include <string>

using namespace tokengate;
using namespace tokengate::test;
using tokenapi::permission;

namespace {

std::set<std::string> keys_of(const json::object& o) {
  std::set<std::string> keys;
  for (const auto& kv : o)
    keys.insert(std::string(kv.key()));
  return keys;
}

// "t7" and the like. (Not `"t" + std::to_string(i)`: GCC 12 warns falsely on it, -Wrestrict.)
std::string numbered(std::string_view prefix, int i) {
  std::string s(prefix);
  s += std::to_string(i);
  return s;
}

std::string at(tokenapi::timestamp t) { return tokenapi::format_rfc3339(t); }

std::string path_of(const issued_token& t) { return "/api-tokens/" + t.id; }
std::string path_of(const reply& r) { return "/api-tokens/" + r.id(); }

json::value actor(std::string_view id, std::string_view type) {
  return json::object{{"id", id}, {"type", type}};
}

const json::array& results_of(const reply& r) {
  REQUIRE(r.status == 200);
  REQUIRE(r.object().contains("results"));
  REQUIRE(r.object().at("results").is_array());
  return r.object().at("results").get_array();
}

// The ids on the page, checking that no entry shows a value.
std::vector<std::string> ids_on(const reply& page) {
  std::vector<std::string> ids;
  for (const auto& t : results_of(page)) {
    CHECK_FALSE(t.as_object().contains("value"));
    ids.emplace_back(t.as_object().at("id").as_string());
  }
  return ids;
}

} // namespace

// --- routing -------------------------------------------------------------------------------------

TEST_CASE("only /api-tokens and the paths below it belong to the API", "[api][routing]") {
  using tokenapi::api_handler;
  CHECK(api_handler::is_api_path("/api-tokens"));
  CHECK(api_handler::is_api_path("/api-tokens/self"));
  CHECK(api_handler::is_api_path("/api-tokens/x/rotate"));
  CHECK_FALSE(api_handler::is_api_path("/api-tokensx"));
  CHECK_FALSE(api_handler::is_api_path("/api-token"));
  CHECK_FALSE(api_handler::is_api_path("/"));
  CHECK_FALSE(api_handler::is_api_path(""));
  CHECK_FALSE(api_handler::is_api_path("/alerts/api-tokens"));
  CHECK_FALSE(api_handler::is_api_path("/API-TOKENS"));
}

TEST_CASE_METHOD(api_world, "paths the API does not have are 404", "[api][routing]") {
  // The last two are not API paths at all: the handler must not read them as one ("/alerts" is
  // shorter than "/api-tokens"; "/xxxxxxxxxx/self" would otherwise be read as GET self).
  for (std::string path : {"/api-tokens/self/other", "/api-tokens/self/rotate/again",
                           "/api-tokens/self/", "/api-tokens//rotate", "/api-tokens/self/rotate/",
                           "/api-tokensx", "/alerts", "/", "/xxxxxxxxxx/self"}) {
    for (std::string method : {"GET", "POST"}) {
      INFO(method << ' ' << path);
      auto r = as_admin().send(method, path);
      CHECK(r.status == 404);
      CHECK(r.allow.empty());
    }
  }
}

TEST_CASE_METHOD(api_world, "a wrong method on a known path is 405 and says what is allowed",
                 "[api][routing]") {
  struct expectation {
    std::string method, path, allow;
  };
  for (const auto& e : std::vector<expectation>{
           {"DELETE", "/api-tokens", "GET, HEAD, POST"},
           {"PUT", "/api-tokens", "GET, HEAD, POST"},
           {"PUT", path_of(admin), "GET, HEAD, POST, DELETE"},
           {"PATCH", "/api-tokens/self", "GET, HEAD, POST, DELETE"},
           {"HEAD", "/api-tokens/self/rotate", "POST"},
           {"GET", "/api-tokens/self/rotate", "POST"},
           {"DELETE", path_of(admin) + "/rotate", "POST"},
       }) {
    INFO(e.method << ' ' << e.path);
    for (const auto& who : {as_admin(), anonymous()}) {
      auto r = who.send(e.method, e.path);
      CHECK(r.status == 405);
      CHECK(r.allow == e.allow);
      CHECK_THAT(r.message(), Catch::Contains(e.method));
    }
  }
  CHECK(as_admin().get("/api-tokens").allow.empty());
}

// --- authentication ------------------------------------------------------------------------------

TEST_CASE_METHOD(api_world, "calls without a usable key are 401 and change nothing",
                 "[api][auth]") {
  const auto victim = issue("victim", {permission::AlertRead});
  auto malformed = admin.value;
  malformed.back() = malformed.back() == 'x' ? 'y' : 'x';
  const auto unknown = *tokenapi::generate_value();
  const auto expiring = issue("expiring", tokenapi::permission_set::all(), {}, t0 + 60s);
  clock.advance(60s);

  struct attempt {
    client who;
    std::string message;
    std::string key;
  };
  for (const auto& a : std::vector<attempt>{
           {anonymous(), "missing X-API-Key header", ""},
           {as(malformed), "malformed API key", malformed},
           {as(unknown), "invalid API key", unknown},
           {as(expiring), "API key has expired", expiring.value},
           {as(""), "malformed API key", ""},
       }) {
    INFO("expecting: " << a.message);
    for (auto r :
         {a.who.get("/api-tokens"), a.who.get("/api-tokens/self"), a.who.get(path_of(victim)),
          a.who.post("/api-tokens", spec_body("x", {"AlertRead"})),
          a.who.post(path_of(victim), spec_body("x", {})), a.who.post(path_of(victim) + "/rotate"),
          a.who.del(path_of(victim))}) {
      CHECK(r.status == 401);
      CHECK(r.message() == a.message);
      if (!a.key.empty())
        CHECK(r.raw.find(a.key) == std::string::npos);
    }
  }
  auto still = as_admin().get(path_of(victim));
  CHECK(still.status == 200);
  CHECK(still.text("name") == "victim");
  CHECK(as(victim).get("/api-tokens/self").status == 200);
  CHECK(records().size() == 3);
}

TEST_CASE_METHOD(api_world, "a key is refused with 403 outside its CIDR blocks", "[api][auth]") {
  const auto fenced =
      issue("fenced", tokenapi::permission_set::all(), {"10.0.0.0/8", "2001:db8::/32"});
  CHECK(as(fenced).from("10.1.2.3").get("/api-tokens").status == 200);
  CHECK(as(fenced).from("::ffff:10.1.2.3").get("/api-tokens/self").status == 200);
  CHECK(as(fenced).from("2001:db8::9").get("/api-tokens/self").status == 200);

  for (std::string outside : {"127.0.0.1", "192.0.2.1", "11.0.0.0", "2001:db9::1", "::1"}) {
    INFO(outside);
    for (auto r : {as(fenced).from(outside).get("/api-tokens/self"),
                   as(fenced).from(outside).post("/api-tokens", spec_body("x", {}))}) {
      CHECK(r.status == 403);
      CHECK(r.message() == "this API key may not be used from " +
                               tokenapi::ip_address::parse(outside)->to_string());
    }
  }
  CHECK(records().size() == 2);
}

TEST_CASE_METHOD(api_world, "reading tokens needs OrganizationAPITokenRead or Modify",
                 "[api][auth]") {
  const auto plain = issue("plain", {permission::AlertRead});
  const auto reader = issue("reader", {permission::OrganizationAPITokenRead});
  const auto modifier = issue("modifier", {permission::OrganizationAPITokenModify});
  const std::string read_missing = "API key lacks the permission OrganizationAPITokenRead";

  CHECK(as(plain).get("/api-tokens").status == 403);
  CHECK(as(plain).get("/api-tokens").message() == read_missing);
  CHECK(as(plain).get(path_of(admin)).status == 403);
  CHECK(as(plain).get(path_of(admin)).message() == read_missing);

  for (const auto& who : {reader, modifier}) {
    INFO(who.id);
    CHECK(as(who).get("/api-tokens").status == 200);
    auto r = as(who).get(path_of(plain));
    CHECK(r.status == 200);
    CHECK(r.text("name") == "plain");
  }
}

TEST_CASE_METHOD(api_world, "changing tokens needs OrganizationAPITokenModify", "[api][auth]") {
  const auto target = issue("target", {permission::AlertRead});
  const std::string modify_missing = "API key lacks the permission OrganizationAPITokenModify";
  for (const auto& who :
       {issue("plain", {permission::AlertRead}),
        issue("reader", {permission::OrganizationAPITokenRead, permission::AlertRead})}) {
    INFO(who.id);
    for (auto r : {as(who).post("/api-tokens", spec_body("new", {})),
                   as(who).post(path_of(target), spec_body("renamed", {})),
                   as(who).post(path_of(target) + "/rotate"), as(who).del(path_of(target))}) {
      CHECK(r.status == 403);
      CHECK(r.message() == modify_missing);
    }
  }
  // Nothing happened: no new token, the target unchanged and its value still good.
  CHECK(records().size() == 4);
  CHECK(as_admin().get(path_of(target)).text("name") == "target");
  CHECK(as(target).get("/api-tokens/self").status == 200);
}

TEST_CASE_METHOD(api_world, "refusals that need no body come before it is read", "[api][auth]") {
  const auto plain = issue("plain", {permission::AlertRead});
  const auto unknown = *tokenapi::generate_value();
  struct early {
    client who;
    std::string method, target;
    unsigned status;
  };
  for (const auto& e : std::vector<early>{
           {as_admin(), "GET", "/api-tokens/self/other", 404},
           {as_admin(), "PUT", "/api-tokens", 405},
           {anonymous(), "POST", "/api-tokens", 401},
           {as(unknown), "POST", "/api-tokens", 401},
           {as_admin().from("::1"), "POST", "/api-tokens", 200},
           {as(plain), "POST", "/api-tokens", 403},
           {as(plain), "POST", "/api-tokens/self", 403},
       }) {
    INFO(e.method << ' ' << e.target << " expecting " << e.status);
    auto early_reply = e.who.refuse_early(e.method, e.target);
    if (e.status == 200) {
      CHECK_FALSE(early_reply.has_value());
      continue;
    }
    REQUIRE(early_reply.has_value());
    // The same answer the full call would give, whatever the body.
    auto full = e.who.send(e.method, e.target, "{not even json");
    CHECK(early_reply->status == e.status);
    CHECK(full.status == e.status);
    CHECK(early_reply->raw == full.raw);
    CHECK(early_reply->allow == full.allow);
  }
  // Calls that may go ahead need their body: create with a bad body is a 400 only later.
  CHECK_FALSE(as_admin().refuse_early("POST", "/api-tokens").has_value());
  CHECK_FALSE(as(plain).refuse_early("POST", "/api-tokens/self/rotate").has_value());
  CHECK(records().size() == 2);
}

TEST_CASE_METHOD(api_world, "answers name the caller they authenticated, for the access log",
                 "[api][auth]") {
  const auto plain = issue("plain", {permission::AlertRead});
  CHECK(as_admin().get("/api-tokens").caller_id == admin.id);
  CHECK(as_admin().post("/api-tokens", "{").caller_id == admin.id); // a 400
  CHECK(as(plain).get("/api-tokens").caller_id == plain.id);        // a 403
  CHECK(as(plain).get("/api-tokens/self").caller_id == plain.id);
  CHECK(anonymous().get("/api-tokens").caller_id.empty());
  CHECK(as(plain).from("::1").send("PUT", "/api-tokens").caller_id.empty()); // 405 before the key
}

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
  CHECK(now.message() == "\"expiresAt\" must lie in the future");

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

TEST_CASE_METHOD(api_world, "update replaces name, permissions and blocks; expiry only when given",
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

// --- list ----------------------------------------------------------------------------------------

TEST_CASE_METHOD(api_world, "list pages through 2,500 tokens, each exactly once", "[api][list]") {
  std::set<std::string> expected{admin.id};
  for (int i = 1; i < 2500; ++i)
    expected.insert(issue(numbered("t", i), {permission::AlertRead}).id);
  REQUIRE(expected.size() == 2500);

  std::multiset<std::string> seen;
  std::vector<std::size_t> sizes;
  std::string cursor;
  for (int guard = 0; guard < 10; ++guard) {
    auto page =
        as_admin().get("/api-tokens?limit=1000" + (cursor.empty() ? "" : "&cursor=" + cursor));
    auto ids = ids_on(page);
    sizes.push_back(ids.size());
    CHECK(std::is_sorted(ids.begin(), ids.end()));
    seen.insert(ids.begin(), ids.end());
    if (!page.has("next"))
      break;
    cursor = page.text("next");
    REQUIRE_FALSE(cursor.empty());
  }
  CHECK(sizes == std::vector<std::size_t>{1000, 1000, 500});
  CHECK(seen.size() == 2500);
  CHECK(std::set<std::string>(seen.begin(), seen.end()) == expected);
}

TEST_CASE_METHOD(api_world, "list: default page size, and no next after a full last page",
                 "[api][list]") {
  for (int i = 1; i < 150; ++i)
    issue(numbered("t", i), {});
  auto first = as_admin().get("/api-tokens");
  CHECK(ids_on(first).size() == 100);
  REQUIRE(first.has("next"));
  auto rest = as_admin().get("/api-tokens?cursor=" + first.text("next"));
  CHECK(ids_on(rest).size() == 50);
  CHECK_FALSE(rest.has("next"));

  // 150 tokens in pages of 75: the second page is full and the last.
  auto a = as_admin().get("/api-tokens?limit=75");
  REQUIRE(a.has("next"));
  auto b = as_admin().get("/api-tokens?cursor=" + a.text("next") + "&limit=75");
  CHECK(ids_on(b).size() == 75);
  CHECK_FALSE(b.has("next"));

  auto everything = as_admin().get("/api-tokens?limit=1000");
  CHECK(ids_on(everything).size() == 150);
  CHECK_FALSE(everything.has("next"));
  CHECK(keys_of(everything.object()) == std::set<std::string>{"results"});
}

TEST_CASE_METHOD(api_world,
                 "list: every token present throughout is listed once while others "
                 "come and go",
                 "[api][list]") {
  // Two keys that may list, since the token deleted below may be either of them.
  const auto other_admin = issue("other admin", tokenapi::permission_set::all());
  std::vector<issued_token> tokens{admin, other_admin};
  for (int i = 0; i < 8; ++i)
    tokens.push_back(issue(numbered("t", i), {}));

  auto first = as_admin().get("/api-tokens?limit=4");
  auto first_ids = ids_on(first);
  REQUIRE(first_ids.size() == 4);
  REQUIRE(first.has("next"));
  // The token the cursor points after goes away, and new ones arrive.
  const auto doomed = first_ids.back();
  auto lister = as(doomed == admin.id ? other_admin : admin);
  REQUIRE(lister.del("/api-tokens/" + doomed).status == 204);
  std::set<std::string> added;
  for (int i = 0; i < 5; ++i)
    added.insert(issue(numbered("late", i), {}).id);

  std::multiset<std::string> seen(first_ids.begin(), first_ids.end());
  std::string cursor = first.text("next");
  for (int guard = 0; guard < 10 && !cursor.empty(); ++guard) {
    auto page = lister.get("/api-tokens?limit=4&cursor=" + cursor);
    auto ids = ids_on(page);
    seen.insert(ids.begin(), ids.end());
    cursor = page.has("next") ? page.text("next") : "";
  }
  CHECK(cursor.empty());
  for (const auto& t : tokens) {
    INFO(t.id);
    CHECK(seen.count(t.id) == 1);
  }
  for (const auto& id : added)
    CHECK(seen.count(id) <= 1);
}

TEST_CASE_METHOD(api_world, "list refuses a bad limit or cursor with 400", "[api][list]") {
  for (std::string limit :
       {"0", "1001", "abc", "-1", "", "1.5", "10x", "+5", " 5", "99999999999999999999999"}) {
    INFO("limit=" << limit);
    auto r = as_admin().get("/api-tokens?limit=" + limit);
    CHECK(r.status == 400);
    CHECK(r.message() == "\"limit\" must be an integer from 1 to 1000");
  }
  for (std::string limit : {"1", "1000"})
    CHECK(as_admin().get("/api-tokens?limit=" + limit).status == 200);

  for (const std::string& cursor : std::vector<std::string>{
           "!!!", "abc", "not-a-cursor", admin.id, "%41%42",
           "bm90LWEtdXVpZA", // base64url of "not-a-uuid"
       }) {
    INFO("cursor=" << cursor);
    auto r = as_admin().get("/api-tokens?cursor=" + cursor);
    CHECK(r.status == 400);
    CHECK_THAT(r.message(), Catch::StartsWith("invalid \"cursor\""));
  }
}

TEST_CASE_METHOD(api_world, "lastUsedAt appears once a token has been used", "[api][usage]") {
  const auto t = issue("ci", {permission::AlertRead});
  CHECK_FALSE(as_admin().get(path_of(t)).has("lastUsedAt"));

  clock.advance(5s);
  auto self = as(t).get("/api-tokens/self");
  CHECK(self.text("lastUsedAt") == at(t0 + 5s));

  clock.advance(10s);
  CHECK(as_admin().get(path_of(t)).text("lastUsedAt") == at(t0 + 5s));
  const auto listed = as_admin().get("/api-tokens");
  const auto& results = results_of(listed);
  const auto item = std::find_if(results.begin(), results.end(), [&](const json::value& v) {
    return v.as_object().at("id").as_string() == t.id;
  });
  REQUIRE(item != results.end());
  REQUIRE(item->as_object().contains("lastUsedAt"));
  CHECK(item->as_object().at("lastUsedAt").as_string() == at(t0 + 5s));
  // A call refused for a missing permission still authenticated the token: it counts as a use.
  CHECK(as(t).get("/api-tokens").status == 403);
  CHECK(as_admin().get(path_of(t)).text("lastUsedAt") == at(t0 + 15s));
}
