// Start-up's fast reader of stored records (tokenapi/plain_record.hpp): it reads what
// encode_payload writes for a token without a lifecycle, and leaves everything else to the
// full decoder.
#include "tokenapi/plain_record.hpp"

#include "tests/support/catch_tokenapi.hpp"
#include "tokenapi/token.hpp"
#include "tokenapi/token_payload.hpp"

#include <catch2/catch.hpp>

#include <string>

using namespace tokengate;
using namespace tokengate::tokenapi;
using test::set_of;
using test::t0;

namespace {

token plain(std::string name = "ci deploy") {
  token t;
  t.id = "0f8fad5b-d9cb-469f-a165-70867728950e";
  t.name = std::move(name);
  t.permissions = set_of({permission::AlertRead, permission::RuleModify});
  t.created_at = t0;
  t.updated_at = t0 + std::chrono::seconds(5);
  t.created_by = actor::token("7c9e6679-7425-40de-944b-e07fc1f90ae7");
  t.updated_by = actor::system();
  t.value_digest.fill(0x42);
  return t;
}

store::token_record record_of(const token& t, std::optional<std::int64_t> last_used = {}) {
  return {t.id, t.value_digest, encode_payload(t), last_used};
}

store::token_record record_with(std::string payload) {
  return {"0f8fad5b-d9cb-469f-a165-70867728950e", {}, std::move(payload), std::nullopt};
}

// A payload as encode_payload writes it for plain(), with `tail` before the closing brace.
std::string canonical(std::string_view tail = "") {
  return R"({"v":1,"name":"x","permissions":["AlertRead"],"cidrs":[],"created_at":1,)"
         R"("created_by":{"id":"system","type":"system"},"updated_at":2,)"
         R"("updated_by":{"id":"system","type":"system"})" +
         std::string(tail) + "}";
}

} // namespace

TEST_CASE("a plain token's record is read field by field", "[plain_record]") {
  auto t = plain();
  t.allowed_cidr_blocks = {*cidr_block::parse("10.0.0.0/8"), *cidr_block::parse("2001:db8::/32")};
  t.expires_at = t0 + std::chrono::hours(24);
  t.rotated_at = t0;
  std::vector<cidr_block> blocks(2);          // blocks of records read before
  const auto r = record_of(t, 1'700'000'000); // the id and name are views into it
  const auto p = read_plain_record(r, blocks);
  REQUIRE(p);
  CHECK(p->id == t.id);
  CHECK(p->name == "ci deploy");
  CHECK(p->value_digest == t.value_digest);
  CHECK(p->permissions == t.permissions);
  CHECK(p->first_block == 2);
  CHECK(p->blocks == 2);
  REQUIRE(blocks.size() == 4);
  CHECK(blocks[2] == t.allowed_cidr_blocks[0]);
  CHECK(blocks[3] == t.allowed_cidr_blocks[1]);
  CHECK(p->expires_at == t.expires_at->time_since_epoch().count());
  CHECK(p->last_used == 1'700'000'000);
}

TEST_CASE("a token that never expires and was never used reads so", "[plain_record]") {
  std::vector<cidr_block> blocks;
  const auto r = record_of(plain());
  const auto p = read_plain_record(r, blocks);
  REQUIRE(p);
  CHECK_FALSE(p->expires_at);
  CHECK_FALSE(p->last_used);
  CHECK(p->blocks == 0);
  CHECK(blocks.empty());
}

TEST_CASE("a lifecycle or a name to unescape is left to the full decoder", "[plain_record]") {
  auto rotated = plain();
  rotated.previous_digest.emplace().fill(0x17);
  rotated.previous_expires_at = t0 + std::chrono::hours(1);
  auto limited = plain();
  limited.rate_limit = rate_limit{100, 60};
  const std::vector<token> cases = {rotated, limited, plain("quote \" and backslash \\"),
                                    plain("caf\xc3\xa9")};
  const auto& t = cases[GENERATE(range(std::size_t{0}, std::size_t{4}))];
  std::vector<cidr_block> blocks;
  const auto r = record_of(t);
  CHECK_FALSE(read_plain_record(r, blocks));
  const auto whole = decode_record(r);
  REQUIRE(whole);
  CHECK(whole->name == t.name);
}

TEST_CASE("a stored name or id that could not be sent upstream is read by neither decoder",
          "[plain_record]") {
  // A row written around the API: a line break (header injection), a NUL, a tab, DEL, nothing,
  // or more than 256 bytes.
  const auto name = GENERATE(std::string("a\r\nX-Evil: 1"), std::string("a\nb"),
                             std::string("a\0b", 3), std::string("tab\there"), std::string("a\x7f"),
                             std::string(), std::string(257, 'n'));
  std::vector<cidr_block> blocks;
  const auto r = record_of(plain(name));
  CHECK_FALSE(read_plain_record(r, blocks));
  CHECK_FALSE(decode_record(r));
  // Nor an id that could not: the API makes UUIDs, a row may hold anything.
  for (const auto& id :
       std::vector<std::string>{"a\r\nX-Evil: 1", "", std::string(129, 'i'), "a b", "a,b"}) {
    auto t = plain();
    t.id = id;
    const auto odd = record_of(t);
    CHECK_FALSE(read_plain_record(odd, blocks));
    CHECK_FALSE(decode_record(odd));
  }
  // The longest name, and a C1 character written before the API refused them, still read.
  CHECK(decode_record(record_of(plain(std::string(256, 'n')))));
  CHECK(decode_record(record_of(plain("c1 \xc2\x85 next line"))));
}

TEST_CASE("another spelling of a record is left to the full decoder, valid or not",
          "[plain_record]") {
  std::vector<cidr_block> scratch;
  const auto usual = record_with(canonical());
  REQUIRE(read_plain_record(usual, scratch)); // the spelling varied below
  const auto payload = GENERATE(
      std::string(R"({ "v":1})"), canonical(" "), canonical() + " ", canonical() + "x",
      canonical(R"(,"expires_at":1.5)"), canonical(R"(,"expires_at":1e9)"),
      canonical(R"(,"expires_at":-0)"), canonical(R"(,"expires_at":012)"),
      canonical(R"(,"expires_at":1234567890123456789)"), canonical(R"(,"expires_at":null)"),
      canonical(R"(,"rotated_at":1,"expires_at":2)"), canonical(R"(,"unknown":1)"),
      canonical(R"(,"expires_at":1,"expires_at":2)"), std::string(R"({"v":2,"name":"x"})"),
      std::string(R"({"v":1,"name":"x","permissions":["NoSuchPermission"],"cidrs":[]})"),
      std::string(R"({"v":1,"name":"x","permissions":[],"cidrs":["10.0.0.0/33"]})"),
      std::string(R"({"v":1,"name":"x","permissions":[],"cidrs":[],"created_at":1,)"
                  R"("created_by":{"id":"system","type":"robot"}})"),
      std::string(R"({"v":1,"name":"x","permissions":[],"cidrs":["10.0.0.0/8")"));
  std::vector<cidr_block> blocks(1);
  const auto r = record_with(payload);
  CHECK_FALSE(read_plain_record(r, blocks));
  CHECK(blocks.size() == 1); // nothing appended
}

TEST_CASE("repeated blocks in a record are kept once, more than 256 are not read",
          "[plain_record]") {
  std::vector<cidr_block> blocks;
  const auto twice = R"({"v":1,"name":"x","permissions":[],"cidrs":["10.0.0.0/8","10.1.2.3/8"],)"
                     R"("created_at":1,"created_by":{"id":"system","type":"system"},)"
                     R"("updated_at":2,"updated_by":{"id":"system","type":"system"}})";
  const auto repeated = record_with(twice);
  const auto p = read_plain_record(repeated, blocks);
  REQUIRE(p);
  CHECK(p->blocks == 1);
  CHECK(blocks.size() == 1);

  std::string many = R"({"v":1,"name":"x","permissions":[],"cidrs":[)";
  for (int i = 0; i < 257; ++i)
    many += (i ? "," : "") + std::string("\"10.0.") + std::to_string(i / 256) + "." +
            std::to_string(i % 256) + "\"";
  many += R"(],"created_at":1,"created_by":{"id":"system","type":"system"},)"
          R"("updated_at":2,"updated_by":{"id":"system","type":"system"}})";
  blocks.clear();
  const auto too_many = record_with(many);
  CHECK_FALSE(read_plain_record(too_many, blocks));
  CHECK(blocks.empty());
  CHECK_FALSE(decode_record(too_many)); // the full decoder refuses it too
}
