// What token_service does outside a single API call: bootstrap at start-up, loading the store
// into the authorizer after a restart, and writing last-use notes in the background.
#include "tests/support/temp_dir.hpp"
#include "tests/unit/tokenapi/api_fixture.hpp"

#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>

using namespace tokengate;
using namespace tokengate::test;
using tokenapi::permission;
using outcome = tokenapi::token_service::bootstrap_outcome;
namespace fs = std::filesystem;

namespace {

void write_file(const fs::path& p, std::string_view content) {
  std::ofstream(p) << content;
  REQUIRE(fs::exists(p));
}

std::string trimmed(std::string s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back())))
    s.pop_back();
  return s;
}

// The bootstrap token as its own key sees it.
void check_is_bootstrap(client who) {
  auto me = who.get("/api-tokens/self");
  REQUIRE(me.status == 200);
  CHECK(me.text("name") == "bootstrap");
  CHECK(me.object().at("permissions").as_array().size() == tokenapi::permission_count);
  CHECK(me.object().at("createdBy") == json::value{{"id", "system"}, {"type", "system"}});
  CHECK(me.object().at("updatedBy") == json::value{{"id", "system"}, {"type", "system"}});
  CHECK(me.object().at("allowedCIDRBlocks").as_array().empty());
  CHECK_FALSE(me.has("expiresAt"));
}

} // namespace

TEST_CASE_METHOD(api_core, "bootstrap writes a new key to a 0600 file when the store is empty",
                 "[bootstrap]") {
  temp_dir dir;
  const auto file = dir / "data" / "admin-token"; // its directory does not exist yet
  CHECK(service.bootstrap(file) == outcome::generated);

  REQUIRE(fs::exists(file));
  CHECK((fs::status(file).permissions() & fs::perms::all) ==
        (fs::perms::owner_read | fs::perms::owner_write));
  const auto content = read_file(file);
  const auto value = trimmed(content);
  CHECK(content == value + "\n");
  CHECK(tokenapi::well_formed(value));

  // The file holds the value; the store holds one token and only the value's digest.
  auto stored = records();
  REQUIRE(stored.size() == 1);
  CHECK(stored[0].value_digest == tokenapi::digest_of(value));
  CHECK_FALSE(store_mentions(value));

  // The key works at once, holds everything, and can make narrower tokens.
  check_is_bootstrap(as(value));
  auto narrow = as(value).post("/api-tokens", spec_body("ci", {"AlertRead"}));
  CHECK(narrow.status == 200);
  CHECK(narrow.object().at("createdBy") ==
        json::value{{"id", stored[0].id}, {"type", "api-token"}});
}

TEST_CASE_METHOD(api_core, "bootstrap is idempotent: one token however often it runs",
                 "[bootstrap]") {
  temp_dir dir;
  const auto file = dir / "admin-token";
  REQUIRE(service.bootstrap(file) == outcome::generated);
  const auto content = read_file(file);
  const auto value = trimmed(content);

  CHECK(service.bootstrap(file) == outcome::present);
  CHECK(service.bootstrap(file) == outcome::present);
  CHECK(records().size() == 1);
  CHECK(read_file(file) == content);
  check_is_bootstrap(as(value));

  // And after a restart, too.
  restarted next(store, clock);
  REQUIRE(next.service.load());
  CHECK(next.service.bootstrap(file) == outcome::present);
  CHECK(records().size() == 1);
  check_is_bootstrap(next.as(value));
}

TEST_CASE_METHOD(api_core, "bootstrap adopts the key an operator put in the file", "[bootstrap]") {
  temp_dir dir;
  const auto file = dir / "admin-token";
  const auto value = new_value();
  write_file(file, "  " + value + " \r\n\n");

  SECTION("into an empty store") {
    CHECK(service.bootstrap(file) == outcome::created_from_file);
    CHECK(records().size() == 1);
  }
  SECTION("beside tokens that exist already") {
    const auto other = issue("other", {permission::AlertRead});
    CHECK(service.bootstrap(file) == outcome::created_from_file);
    CHECK(records().size() == 2);
    CHECK(as(other).get("/api-tokens/self").status == 200);
  }
  check_is_bootstrap(as(value));
  CHECK_FALSE(store_mentions(value));
  CHECK(service.bootstrap(file) == outcome::present);
  CHECK(read_file(file) == "  " + value + " \r\n\n"); // the operator's file is left alone
}

TEST_CASE_METHOD(api_core, "a deleted or rotated bootstrap token stays revoked", "[bootstrap]") {
  temp_dir dir;
  const auto file = dir / "admin-token";
  const bool adopted = GENERATE(false, true);
  INFO((adopted ? "the operator's key" : "a generated key"));
  if (adopted) {
    write_file(file, new_value());
    REQUIRE(service.bootstrap(file) == outcome::created_from_file);
  } else {
    REQUIRE(service.bootstrap(file) == outcome::generated);
  }
  const auto value = trimmed(read_file(file));
  REQUIRE(as(value).get("/api-tokens/self").status == 200);

  SECTION("deleted") {
    // The first admin makes its own token and deletes the bootstrap one.
    auto mine = as(value).post("/api-tokens", spec_body("me", {"OrganizationAPITokenModify"}));
    REQUIRE(mine.status == 200);
    REQUIRE(as(value).del("/api-tokens/self").status == 204);

    CHECK(service.bootstrap(file) == outcome::revoked);
    CHECK(as(value).get("/api-tokens/self").status == 401);
    CHECK(records().size() == 1);

    restarted next(store, clock);
    REQUIRE(next.service.load());
    CHECK(next.service.bootstrap(file) == outcome::revoked);
    CHECK(next.as(value).get("/api-tokens/self").status == 401);
    CHECK(next.as(mine.value()).get("/api-tokens/self").status == 200);
  }
  SECTION("deleted, leaving the store empty") {
    REQUIRE(as(value).del("/api-tokens/self").status == 204);
    REQUIRE(records().empty());
    CHECK(service.bootstrap(file) == outcome::revoked);
    CHECK(as(value).get("/api-tokens/self").status == 401);
    CHECK(records().empty());
  }
  SECTION("rotated") {
    auto rotated = as(value).post("/api-tokens/self/rotate");
    REQUIRE(rotated.status == 200);
    CHECK(service.bootstrap(file) == outcome::revoked);
    CHECK(as(value).get("/api-tokens/self").status == 401);
    CHECK(as(rotated.value()).get("/api-tokens/self").status == 200);
    CHECK(records().size() == 1);
  }
}

TEST_CASE_METHOD(api_core, "bootstrap refuses a file that holds no tokengate key", "[bootstrap]") {
  temp_dir dir;
  const auto file = dir / "admin-token";
  auto typo = new_value();
  typo[10] = typo[10] == 'a' ? 'b' : 'a';
  for (std::string content : {std::string("hello\n"), std::string(), std::string("\n"), typo + "\n",
                              "Bearer " + new_value()}) {
    INFO('"' << content << '"');
    write_file(file, content);
    try {
      (void)service.bootstrap(file);
      FAIL("bootstrap accepted the file");
    } catch (const std::runtime_error& e) {
      const std::string message = e.what();
      CHECK_THAT(message, Catch::Contains(file.string()));
      CHECK_THAT(message, Catch::Contains("does not hold a tokengate key"));
      if (!trimmed(content).empty())
        CHECK(message.find(trimmed(content)) == std::string::npos); // never echoes a key
    }
  }
  CHECK(records().empty());
}

TEST_CASE_METHOD(api_world, "bootstrap does nothing when there is no file but there are tokens",
                 "[bootstrap]") {
  temp_dir dir;
  const auto file = dir / "admin-token";
  CHECK(service.bootstrap(file) == outcome::not_needed);
  CHECK_FALSE(fs::exists(file));
  CHECK(records().size() == 1);
  CHECK(as_admin().get("/api-tokens/self").status == 200);
}

TEST_CASE_METHOD(api_world, "after a restart, loading the store brings back every live key",
                 "[service][load]") {
  const auto kept = issue("kept", {permission::AlertRead}, {"10.0.0.0/8"});
  const auto rotated = issue("rotated", {permission::AlertRead});
  const auto deleted = issue("deleted", {permission::AlertRead});
  auto rotation = as_admin().post("/api-tokens/" + rotated.id + "/rotate");
  REQUIRE(rotation.status == 200);
  REQUIRE(as_admin().del("/api-tokens/" + deleted.id).status == 204);

  restarted next(store, clock);
  CHECK(next.as(admin.value).get("/api-tokens/self").status == 401); // nothing loaded yet
  auto report = next.service.load();
  REQUIRE(report);
  CHECK(report->loaded == 3);
  CHECK(report->unreadable == 0);
  CHECK(next.auth.size() == 3);

  CHECK(next.as(admin.value).get("/api-tokens/self").status == 200);
  CHECK(next.as(kept.value).from("10.1.1.1").get("/api-tokens/self").status == 200);
  CHECK(next.as(kept.value).from("192.0.2.1").get("/api-tokens/self").status == 403);
  CHECK(next.as(rotation.value()).get("/api-tokens/self").status == 200);
  CHECK(next.as(rotated.value).get("/api-tokens/self").status == 401);
  CHECK(next.as(deleted.value).get("/api-tokens/self").status == 401);
}

TEST_CASE_METHOD(api_world, "loading a store of several pages brings back every key",
                 "[service][load]") {
  // The store is read in pages of 10,000: a page and a half, and exactly two pages.
  const auto count = GENERATE(15'000, 19'999);
  std::vector<store::token_record> records;
  std::vector<std::string> values;
  for (int i = 0; i < count; ++i) {
    tokenapi::token t;
    t.id = *tokenapi::generate_id();
    t.name = "bulk " + std::to_string(i);
    t.permissions = i % 2 ? set_of({permission::AlertRead}) : set_of({permission::RuleRead});
    t.created_at = t.updated_at = t0;
    values.push_back(new_value());
    t.value_digest = tokenapi::digest_of(values.back());
    records.push_back({t.id, t.value_digest, tokenapi::encode_payload(t), std::nullopt});
  }
  REQUIRE(store.put_many(records));

  restarted next(store, clock);
  auto report = next.service.load();
  REQUIRE(report);
  CHECK(report->loaded == static_cast<std::size_t>(count) + 1); // and the admin
  CHECK(report->unreadable == 0);
  CHECK(next.auth.size() == static_cast<std::size_t>(count) + 1);
  for (int i : {0, 1, 9'999, 10'000, count - 1}) {
    auto me = next.as(values[static_cast<std::size_t>(i)]).get("/api-tokens/self");
    CHECK(me.status == 200);
    CHECK(me.text("name") == "bulk " + std::to_string(i));
  }
  auto d = next.auth.decide(values.back(), ip("10.0.0.1"), set_of({permission::RuleRead}), t0);
  CHECK(d.allowed() == ((count - 1) % 2 == 0));
  REQUIRE(d.token);
  CHECK(d.token->name() == "bulk " + std::to_string(count - 1));
  CHECK(next.as(admin.value).get("/api-tokens/self").status == 200);
}

TEST_CASE_METHOD(api_world, "a record that cannot be read is reported and never authenticates",
                 "[service][load]") {
  const auto value = new_value();
  REQUIRE(store.put({"0f8fad5b-d9cb-469f-a165-70867728950e", tokenapi::digest_of(value),
                     "{not json", std::nullopt}));
  restarted next(store, clock);
  auto report = next.service.load();
  REQUIRE(report);
  CHECK(report->loaded == 1);
  CHECK(report->unreadable == 1);
  CHECK(next.as(value).get("/api-tokens/self").status == 401);
  CHECK(next.as(admin.value).get("/api-tokens").status == 200);
  // Named by its id: 500 with why; it can still be deleted.
  const auto path = std::string("/api-tokens/0f8fad5b-d9cb-469f-a165-70867728950e");
  const auto got = next.as(admin.value).get(path);
  CHECK(got.status == 500);
  CHECK(got.message() == "stored token is unreadable");
  CHECK(next.as(admin.value).del(path).status == 204);
  CHECK(next.as(admin.value).get(path).status == 404);
}

TEST_CASE_METHOD(api_world, "last use is written in the background and survives a restart",
                 "[service][usage]") {
  const auto t = issue("ci", {permission::AlertRead});
  auto flushed = service.flush_usage();
  REQUIRE(flushed);
  CHECK(*flushed == 0);

  clock.advance(5s);
  REQUIRE(as(t).get("/api-tokens/self").status == 200);
  REQUIRE(as(t).get("/api-tokens/self").status == 200);
  clock.advance(5s);
  REQUIRE(as(t).get("/api-tokens/self").status == 200);
  CHECK_FALSE(store.get(t.id).value()->last_used.has_value()); // not on the request path

  flushed = service.flush_usage();
  REQUIRE(flushed);
  CHECK(*flushed == 1);
  CHECK(store.get(t.id).value()->last_used == (t0 + 10s).time_since_epoch().count());
  CHECK(*service.flush_usage() == 0);

  restarted next(store, clock);
  REQUIRE(next.service.load());
  CHECK(next.as(admin.value).get("/api-tokens/" + t.id).text("lastUsedAt") ==
        tokenapi::format_rfc3339(t0 + 10s));
}

TEST_CASE_METHOD(api_world, "a restart after an overlap ended does not index the replaced value",
                 "[service][load][rotation]") {
  const auto ended = issue("ended", {permission::AlertRead});
  const auto running = issue("running", {permission::AlertRead});
  REQUIRE(as_admin()
              .post("/api-tokens/" + ended.id + "/rotate", R"({"previousValueValidFor": 60})")
              .status == 200);
  clock.advance(30s);
  REQUIRE(as_admin()
              .post("/api-tokens/" + running.id + "/rotate", R"({"previousValueValidFor": 60})")
              .status == 200);
  clock.advance(31s); // the first overlap is over, the second runs

  restarted next(store, clock);
  REQUIRE(next.service.load());
  CHECK(next.auth.find(tokenapi::digest_of(ended.value)) == nullptr);
  CHECK(next.auth.find(tokenapi::digest_of(running.value)) != nullptr);
  CHECK(next.as(running.value).get("/api-tokens/self").status == 200);
  CHECK(next.as(ended.value).get("/api-tokens/self").status == 401);
}
