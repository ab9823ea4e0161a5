// /api-tokens as a client sees it, listing tokens: pages, cursors, limits and last use
// (README "The token API").
#include "tests/unit/tokenapi/api_checks.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <set>
#include <string>

using namespace tokengate;
using namespace tokengate::test;
using tokenapi::permission;

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
           "bm90IGEgdXVpZA", // base64url of "not a uuid": no id has a space
       }) {
    INFO("cursor=" << cursor);
    auto r = as_admin().get("/api-tokens?cursor=" + cursor);
    CHECK(r.status == 400);
    CHECK_THAT(r.message(), Catch::StartsWith("invalid \"cursor\""));
  }
}

TEST_CASE_METHOD(api_world, "query names and values are percent-decoded, a broken escape is 400",
                 "[api][list]") {
  for (int i = 0; i < 3; ++i)
    (void)issue("t" + std::to_string(i), {});
  CHECK(results_of(as_admin().get("/api-tokens?limit=%32")).size() == 2);
  CHECK(results_of(as_admin().get("/api-tokens?%6Cimit=1")).size() == 1);
  const auto first = as_admin().get("/api-tokens?limit=2");
  std::string escaped; // every character of the cursor as %XX
  for (unsigned char c : first.text("next")) {
    constexpr std::string_view hex = "0123456789ABCDEF";
    escaped.append({'%', hex[c >> 4], hex[c & 0xf]});
  }
  const auto plain_next = as_admin().get("/api-tokens?limit=2&cursor=" + first.text("next"));
  const auto escaped_next = as_admin().get("/api-tokens?limit=2&cursor=" + escaped);
  CHECK(escaped_next.status == 200);
  CHECK(escaped_next.raw == plain_next.raw);

  const auto twice = as_admin().get("/api-tokens?limit=1&%6cimit=2");
  CHECK(twice.status == 400);
  CHECK(twice.message() == "query parameter \"limit\" is given more than once");
  for (std::string query : {"limit=%3", "limit=%zz", "x=%", "%g1=2"}) {
    INFO(query);
    const auto r = as_admin().get("/api-tokens?" + query);
    CHECK(r.status == 400);
    CHECK(r.message() == "the query has a broken %-escape");
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
  // So does one refused for its address.
  const auto fenced = issue("fenced", {permission::AlertRead}, {"10.0.0.0/8"});
  clock.advance(3s);
  CHECK(as(fenced).from("192.0.2.1").get("/api-tokens/self").status == 403);
  CHECK(as_admin().get(path_of(fenced)).text("lastUsedAt") == at(t0 + 18s));
}
