// /api-tokens as a client sees it, who may call what: the paths and methods of the API, and
// the keys and permissions each call needs (README "The token API").
#include "tests/unit/tokenapi/api_checks.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <set>
#include <string>

using namespace tokengate;
using namespace tokengate::test;
using tokenapi::permission;

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

  // A known key refused for its address or its expiry is still named: the trail must say whose
  // key a caller tried from outside its blocks, or after it ended.
  const auto fenced = issue("fenced", tokenapi::permission_set::all(), {"10.0.0.0/8"});
  const auto outside = as(fenced).from("192.0.2.1").get("/api-tokens/self");
  CHECK(outside.status == 403);
  CHECK(outside.caller_id == fenced.id);
  const auto ending = issue("ending", tokenapi::permission_set::all(), {}, t0 + 1h);
  clock.advance(2h);
  const auto expired = as(ending).get("/api-tokens/self");
  CHECK(expired.status == 401);
  CHECK(expired.caller_id == ending.id);
}
