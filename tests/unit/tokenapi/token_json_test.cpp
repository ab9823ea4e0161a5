#include "tokenapi/token_json.hpp"

#include "tests/support/catch_tokenapi.hpp"
#include "tests/unit/tokenapi/catch_api_result.hpp"
#include "tokenapi/token_value.hpp"

#include <boost/json.hpp>
#include <catch2/catch.hpp>

#include <set>
#include <string>

using namespace tokengate;
using namespace tokengate::tokenapi;
using namespace std::chrono_literals;
namespace json = boost::json;

namespace {

const timestamp now = std::chrono::sys_days{std::chrono::year{2026} / 11 / 28} + 2h + 41min + 26s;

// The message a body is refused with (as a 400); fails the test when the body is accepted.
std::string refusal(std::string_view body) {
  auto spec = parse_token_spec(body, now);
  INFO("body: " << body);
  REQUIRE_FALSE(spec.has_value());
  CHECK(spec.error().status == 400);
  return spec.error().message;
}

token_spec accepted(std::string_view body) {
  auto spec = parse_token_spec(body, now);
  INFO("body: " << body);
  if (!spec)
    FAIL("refused: " << spec.error().message);
  return *spec;
}

cidr_block cidr(std::string_view text) {
  auto b = cidr_block::parse(text);
  REQUIRE(b.has_value());
  return *b;
}

std::set<std::string> keys_of(const json::object& o) {
  std::set<std::string> keys;
  for (const auto& kv : o)
    keys.insert(std::string(kv.key()));
  return keys;
}

// {"name": "ci", "permissions": ["AlertRead"], <extra>}
std::string body_with(std::string_view extra) {
  return R"({"name":"ci","permissions":["AlertRead"],)" + std::string(extra) + "}";
}

// A token with every field set.
token full_token() {
  token t;
  t.id = "0f8fad5b-d9cb-469f-a165-70867728950e";
  t.name = "ci deploy";
  t.permissions.insert(permission::RuleRead);
  t.permissions.insert(permission::AlertModify);
  t.allowed_cidr_blocks = {cidr("10.0.0.0/8"), cidr("2001:db8::/32")};
  t.created_at = now;
  t.created_by = actor::system();
  t.updated_at = now + 60s;
  t.updated_by = actor::token("7c9e6679-7425-40de-944b-e07fc1f90ae7");
  t.expires_at = now + 24h;
  t.rotated_at = now + 120s;
  t.last_used_at = now + 90s;
  t.value_digest = digest_of("tg_not-a-real-value");
  return t;
}

// A token with only the required fields.
token bare_token() {
  token t;
  t.id = "7c9e6679-7425-40de-944b-e07fc1f90ae7";
  t.name = "minimal";
  t.created_at = t.updated_at = now;
  t.created_by = t.updated_by = actor::token("0f8fad5b-d9cb-469f-a165-70867728950e");
  return t;
}

} // namespace

TEST_CASE("a valid body becomes a token spec", "[json]") {
  auto spec = accepted(
      R"({"name":"ci","permissions":["RuleRead","AlertRead","RuleRead"],
          "allowedCIDRBlocks":["10.1.2.3/8","192.0.2.7","10.0.0.0/8","2001:db8::1/32"]})");
  CHECK(spec.name == "ci");
  CHECK(spec.permissions.join(",") == "AlertRead,RuleRead");
  REQUIRE(spec.allowed_cidr_blocks.size() == 3); // 10.1.2.3/8 and 10.0.0.0/8 are one block
  CHECK(spec.allowed_cidr_blocks[0].to_string() == "10.0.0.0/8");
  CHECK(spec.allowed_cidr_blocks[1].to_string() == "192.0.2.7/32");
  CHECK(spec.allowed_cidr_blocks[2].to_string() == "2001:db8::/32");
  CHECK_FALSE(spec.expires_at.has_value());

  auto minimal = accepted(R"({"permissions":[],"name":"x"})");
  CHECK(minimal.permissions.empty());
  CHECK(minimal.allowed_cidr_blocks.empty());

  CHECK(accepted(body_with(R"("allowedCIDRBlocks":[])")).allowed_cidr_blocks.empty());
  CHECK(accepted(R"({"name":")" + std::string(256, 'n') + R"(","permissions":[]})").name.size() ==
        256);
  CHECK(accepted(R"({"name":"caf\u00e9 \ud83d\ude80","permissions":[]})").name ==
        "caf\xc3\xa9 \xf0\x9f\x9a\x80");
}

TEST_CASE("expiresAt: absent, null or a future time", "[json]") {
  SECTION("absent: not given") {
    CHECK_FALSE(accepted(R"({"name":"ci","permissions":[]})").expires_at.has_value());
  }
  SECTION("null: never expires") {
    auto spec = accepted(body_with(R"("expiresAt":null)"));
    REQUIRE(spec.expires_at.has_value());
    CHECK_FALSE(spec.expires_at->has_value());
  }
  SECTION("a time in the future, in any offset") {
    auto spec = accepted(body_with(R"("expiresAt":"2026-11-28T03:41:27+01:00")"));
    REQUIRE(spec.expires_at.has_value());
    REQUIRE(spec.expires_at->has_value());
    CHECK(**spec.expires_at == now + 1s);
  }
}

TEST_CASE("expiresAt must be an RFC 3339 time in the future", "[json]") {
  CHECK_THAT(refusal(body_with(R"("expiresAt":"2026-11-28T02:41:26Z")")),
             Catch::Contains("\"expiresAt\" must lie in the future"));
  CHECK_THAT(refusal(body_with(R"("expiresAt":"2026-11-28T02:41:25Z")")),
             Catch::Contains("future"));
  CHECK_THAT(refusal(body_with(R"("expiresAt":"2020-01-01T00:00:00Z")")),
             Catch::Contains("future"));
  // A fraction is dropped: 0.6 s from now is now.
  CHECK(refusal(body_with(R"("expiresAt":"2026-11-28T02:41:26.6Z")")) ==
        "\"expiresAt\" must lie in the future (in whole seconds)");
  // Valid RFC 3339 refused for a reason of its own, named.
  CHECK(refusal(body_with(R"("expiresAt":"2030-12-31T23:59:60Z")")) ==
        "\"expiresAt\" is a leap second (:60), which tokengate does not take: use :59");
  CHECK(refusal(body_with(R"("expiresAt":"9999-12-31T23:59:59-01:00")")) ==
        "\"expiresAt\" must fall in the years 0000 to 9999 in UTC");
  CHECK_THAT(refusal(body_with(R"("expiresAt":"2030-12-31T23:59:61Z")")),
             Catch::Contains("\"expiresAt\" must be an RFC 3339 date-time"));
  for (auto bad : {R"("tomorrow")", R"("2030-01-01")", R"("2030-01-01T00:00:00")",
                   R"("2030-02-30T00:00:00Z")", "1893456000", "true", "{}", "[]"}) {
    INFO(bad);
    CHECK_THAT(refusal(body_with(std::string(R"("expiresAt":)") + bad)),
               Catch::Contains("\"expiresAt\" must be an RFC 3339 date-time"));
  }
}

TEST_CASE("bodies that are not a JSON object are refused", "[json]") {
  CHECK_THAT(refusal(""), Catch::Contains("not valid JSON"));
  CHECK_THAT(refusal("{"), Catch::Contains("not valid JSON"));
  CHECK_THAT(refusal(R"({"name":"ci",})"), Catch::Contains("not valid JSON"));
  CHECK_THAT(refusal(R"({"name":"ci"} trailing)"), Catch::Contains("not valid JSON"));
  CHECK_THAT(refusal("name=ci"), Catch::Contains("not valid JSON"));
  for (auto body : {"[]", R"("name")", "42", "null", "true"}) {
    INFO(body);
    CHECK(refusal(body) == "request body must be a JSON object");
  }
}

TEST_CASE("name is a required, non-empty, printable string of at most 256 bytes", "[json]") {
  CHECK(refusal(R"({"permissions":[]})") == "missing required field \"name\"");
  CHECK(refusal(R"({"name":42,"permissions":[]})") == "\"name\" must be a string");
  CHECK(refusal(R"({"name":null,"permissions":[]})") == "\"name\" must be a string");
  CHECK(refusal(R"({"name":["ci"],"permissions":[]})") == "\"name\" must be a string");
  CHECK(refusal(R"({"name":"","permissions":[]})") == "\"name\" must not be empty");
  CHECK(refusal(R"({"name":")" + std::string(257, 'n') + R"(","permissions":[]})") ==
        "\"name\" is longer than 256 bytes");
  for (auto name : {R"(a\nb)", R"(a\u0000b)", R"(\t)", R"(a\u001fb)", R"(a\u007fb)"}) {
    INFO(name);
    CHECK(refusal(R"({"permissions":[],"name":")" + std::string(name) + "\"}") ==
          "\"name\" must not contain control characters");
  }
}

TEST_CASE("a name that holds a key value is refused, without the value in the answer",
          "[json][secrets]") {
  const auto key = test::new_value();
  auto upper_prefix = key;
  upper_prefix.replace(0, 3, "TG_");
  for (const auto& name : {key, "ci " + key, key + " (old)", key.substr(0, 43), key.substr(3),
                           upper_prefix, "old:" + key.substr(3) + "!"}) {
    const auto answer = refusal(R"({"permissions":[],"name":")" + name + "\"}");
    CHECK(answer == "\"name\" must not hold an API key value");
    CHECK(answer.find(key.substr(3, 20)) == std::string::npos);
  }
  // Names that only mention the prefix, or are short runs, are names.
  CHECK(accepted(R"({"permissions":[],"name":"tg_ci deploy key"})").name == "tg_ci deploy key");
  CHECK(accepted(R"({"permissions":[],"name":"tg_abc123"})").name == "tg_abc123");
  // 49 base62 characters whose checksum does not hold are a name too.
  auto broken = key.substr(3);
  broken.back() = broken.back() == 'a' ? 'b' : 'a';
  CHECK(accepted(R"({"permissions":[],"name":")" + broken + "\"}").name == broken);
}

TEST_CASE("permissions is a required array of known permission names", "[json]") {
  CHECK(refusal(R"({"name":"ci"})") == "missing required field \"permissions\"");
  for (auto bad : {R"("AlertRead")", "null", "{}", "7"}) {
    INFO(bad);
    CHECK(refusal(std::string(R"({"name":"ci","permissions":)") + bad + "}") ==
          "\"permissions\" must be an array of strings");
  }
  CHECK(refusal(R"({"name":"ci","permissions":["AlertRead",7]})") ==
        "\"permissions\" must be an array of strings");
  CHECK(refusal(R"({"name":"ci","permissions":[null]})") ==
        "\"permissions\" must be an array of strings");
  CHECK(refusal(R"({"name":"ci","permissions":["AlertRead","alertread"]})") ==
        "unknown permission \"alertread\"");
  CHECK(refusal(R"({"name":"ci","permissions":["Superuser"]})") ==
        "unknown permission \"Superuser\"");
}

TEST_CASE("allowedCIDRBlocks is an array of valid blocks", "[json]") {
  // null is a wrong type like any other (it used to mean [], which made it a way to drop the
  // blocks that a client library would not notice).
  for (auto bad : {R"("10.0.0.0/8")", "{}", "7", "true", "null"}) {
    INFO(bad);
    CHECK(refusal(body_with(std::string(R"("allowedCIDRBlocks":)") + bad)) ==
          "\"allowedCIDRBlocks\" must be an array of strings");
  }
  CHECK(refusal(body_with(R"("allowedCIDRBlocks":["10.0.0.0/8",8])")) ==
        "\"allowedCIDRBlocks\" must be an array of strings");
  CHECK(refusal(body_with(R"("allowedCIDRBlocks":["10.0.0.0/8","10.0.0.0/33"])")) ==
        "invalid CIDR block \"10.0.0.0/33\" in \"allowedCIDRBlocks\"");
  CHECK(refusal(body_with(R"("allowedCIDRBlocks":["fe80::1%eth0"])")) ==
        "invalid CIDR block \"fe80::1%eth0\" in \"allowedCIDRBlocks\"");
  CHECK(refusal(body_with(R"("allowedCIDRBlocks":[""])")) ==
        "invalid CIDR block \"\" in \"allowedCIDRBlocks\"");
}

TEST_CASE("allowedCIDRBlocks holds at most 256 blocks", "[json][limits]") {
  // n distinct blocks 10.0.<i/256>.<i%256>/32.
  const auto blocks = [](int n) {
    std::string list;
    for (int i = 0; i < n; ++i)
      list += (i == 0 ? "\"10.0." : ",\"10.0.") + std::to_string(i / 256) + "." +
              std::to_string(i % 256) + "/32\"";
    return std::string(R"("allowedCIDRBlocks":[)") + list + "]";
  };
  CHECK(accepted(body_with(blocks(256))).allowed_cidr_blocks.size() == 256);
  CHECK(refusal(body_with(blocks(257))) == "\"allowedCIDRBlocks\" holds more than 256 blocks");
}

TEST_CASE("allowedCIDRBlocks never admits more than it spells", "[json][spelling]") {
  using namespace std::string_literals;
  CHECK(refusal(body_with(R"("allowedCIDRBlocks":["1.2.3.4\u0000junk/8"])")) ==
        "invalid CIDR block \"1.2.3.4\0junk/8\" in \"allowedCIDRBlocks\""s);
  // One matcher per check: Catch2 2.x's `a && b` keeps references to the temporaries.
  const auto mapped_refusal = refusal(body_with(R"("allowedCIDRBlocks":["::ffff:10.0.0.0/8"])"));
  CHECK_THAT(mapped_refusal, Catch::StartsWith("invalid CIDR block \"::ffff:10.0.0.0/8\""));
  CHECK_THAT(mapped_refusal, Catch::Contains("::ffff:10.0.0.0/104 is 10.0.0.0/8"));
  auto mapped = accepted(body_with(R"("allowedCIDRBlocks":["::ffff:10.0.0.0/104"])"));
  REQUIRE(mapped.allowed_cidr_blocks.size() == 1);
  CHECK(mapped.allowed_cidr_blocks[0].to_string() == "10.0.0.0/8");
}

TEST_CASE("a key given twice is refused by name, at any depth", "[json][spelling]") {
  CHECK(refusal(R"({"allowedCIDRBlocks":["10.0.0.0/8"],"name":"ci","permissions":[],)"
                R"("allowedCIDRBlocks":[]})") ==
        "request body has a duplicate key \"allowedCIDRBlocks\"");
  CHECK(refusal(R"({"name":"a","name":"b","permissions":[]})") ==
        "request body has a duplicate key \"name\"");
  // Escapes spell the same key: "n\u0061me" is "name".
  CHECK(refusal(R"({"name":"a","n\u0061me":"b","permissions":[]})") ==
        "request body has a duplicate key \"name\"");
  CHECK(refusal(R"({"":1,"":2})") == "request body has a duplicate key \"\"");
  CHECK(refusal(R"({"name":"a","permissions":[],"x":{"k":1,"k":2}})") ==
        "request body has a duplicate key \"k\"");
  // Keys of different objects, and keys that differ in case, are different keys.
  CHECK_THAT(refusal(R"({"name":"a","permissions":[],"Name":"b"})"),
             Catch::StartsWith("unknown field \"Name\""));
}

TEST_CASE("names hold no C0, DEL or C1 control characters", "[json][spelling]") {
  for (auto name : {R"(a\u0080b)", R"(a\u0085b)", R"(\u009f)", R"(a\u009bb)"}) {
    INFO(name);
    CHECK(refusal(R"({"permissions":[],"name":")" + std::string(name) + "\"}") ==
          "\"name\" must not contain control characters");
  }
  CHECK(accepted(R"({"permissions":[],"name":"a\u00a0b\u00c2"})").name == "a\xc2\xa0"
                                                                          "b\xc3\x82");
}

TEST_CASE("unknown fields are refused by name", "[json]") {
  CHECK(refusal(body_with(R"("value":"tg_x")")) ==
        "unknown field \"value\"; expected name, permissions, allowedCIDRBlocks, expiresAt, "
        "rateLimit");
  CHECK_THAT(refusal(body_with(R"("allowedCidrBlocks":[])")),
             Catch::StartsWith("unknown field \"allowedCidrBlocks\""));
  CHECK_THAT(refusal(body_with(R"("id":"x")")), Catch::StartsWith("unknown field \"id\""));
}

TEST_CASE("long input quoted in a message is cut, and stays valid UTF-8", "[json]") {
  const std::string long_name(200, 'P');
  auto message = refusal(R"({"name":"ci","permissions":[")" + long_name + R"("]})");
  CHECK_THAT(message, Catch::StartsWith("unknown permission \"PPPP"));
  CHECK_THAT(message, Catch::EndsWith("...\""));
  CHECK(message.size() < 100);

  // 'x' then two-byte characters: a cut at a fixed byte count would split one of them.
  std::string accented = "x";
  for (int i = 0; i < 60; ++i)
    accented += "\xc3\xa9";
  message = refusal(R"({"name":"ci","permissions":[")" + accented + R"("]})");
  boost::system::error_code ec;
  auto parsed = json::parse(error_body(message), ec);
  INFO("message: " << message);
  CHECK_FALSE(ec);
}

TEST_CASE("error bodies are {\"message\": ...}", "[json]") {
  auto parsed = json::parse(error_body("bad \"thing\"\n"));
  CHECK(parsed == json::value{{"message", "bad \"thing\"\n"}});
}

TEST_CASE("the API form of a token has exactly the OpenAPI fields", "[json]") {
  const auto t = full_token();
  auto o = to_api_json(t);
  CHECK(keys_of(o) == std::set<std::string>{"allowedCIDRBlocks", "createdAt", "createdBy",
                                            "expiresAt", "id", "lastUsedAt", "name", "permissions",
                                            "rotatedAt", "updatedAt", "updatedBy"});
  CHECK(o["id"] == "0f8fad5b-d9cb-469f-a165-70867728950e");
  CHECK(o["name"] == "ci deploy");
  CHECK(o["permissions"] == json::array{"AlertModify", "RuleRead"});
  CHECK(o["allowedCIDRBlocks"] == json::array{"10.0.0.0/8", "2001:db8::/32"});
  CHECK(o["createdAt"] == "2026-11-28T02:41:26Z");
  CHECK(o["updatedAt"] == "2026-11-28T02:42:26Z");
  CHECK(o["lastUsedAt"] == "2026-11-28T02:42:56Z");
  CHECK(o["rotatedAt"] == "2026-11-28T02:43:26Z");
  CHECK(o["expiresAt"] == "2026-11-29T02:41:26Z");
  CHECK(o["createdBy"] == json::object{{"id", "system"}, {"type", "system"}});
  CHECK(o["updatedBy"] ==
        json::object{{"id", "7c9e6679-7425-40de-944b-e07fc1f90ae7"}, {"type", "api-token"}});
}

TEST_CASE("the API form leaves out unset optional times and shows a value only when given",
          "[json]") {
  auto o = to_api_json(bare_token());
  CHECK(keys_of(o) == std::set<std::string>{"allowedCIDRBlocks", "createdAt", "createdBy", "id",
                                            "name", "permissions", "updatedAt", "updatedBy"});
  CHECK(o["permissions"] == json::array{});
  CHECK(o["allowedCIDRBlocks"] == json::array{});
  CHECK(o["createdBy"] ==
        json::object{{"id", "0f8fad5b-d9cb-469f-a165-70867728950e"}, {"type", "api-token"}});

  auto with_value = to_api_json(bare_token(), "tg_the-value");
  CHECK(with_value["value"] == "tg_the-value");
  CHECK(with_value.size() == o.size() + 1);
}

TEST_CASE("a stored payload decodes back to the same token and never holds the value", "[json]") {
  const std::string value = "tg_0123456789abcdefghijklmnopqrstuvwxyzABCDEFG";
  auto t = full_token();
  t.value_digest = digest_of(value);
  const auto payload = encode_payload(t);
  CHECK(payload.find(value) == std::string::npos);
  CHECK(payload.find("tg_") == std::string::npos);

  store::token_record record{t.id, t.value_digest, payload,
                             t.last_used_at->time_since_epoch().count()};
  auto back = decode_record(record);
  REQUIRE(back.has_value());
  CHECK(back->id == t.id);
  CHECK(back->name == t.name);
  CHECK(back->permissions == t.permissions);
  CHECK(back->allowed_cidr_blocks == t.allowed_cidr_blocks);
  CHECK(back->created_at == t.created_at);
  CHECK(back->created_by == t.created_by);
  CHECK(back->updated_at == t.updated_at);
  CHECK(back->updated_by == t.updated_by);
  CHECK(back->expires_at == t.expires_at);
  CHECK(back->rotated_at == t.rotated_at);
  CHECK(back->last_used_at == t.last_used_at);
  CHECK(back->value_digest == t.value_digest);
  CHECK(json::serialize(to_api_json(*back)) == json::serialize(to_api_json(t)));

  auto bare = bare_token();
  auto bare_back = decode_record({bare.id, bare.value_digest, encode_payload(bare), std::nullopt});
  REQUIRE(bare_back.has_value());
  CHECK_FALSE(bare_back->expires_at.has_value());
  CHECK_FALSE(bare_back->rotated_at.has_value());
  CHECK_FALSE(bare_back->last_used_at.has_value());
  CHECK(bare_back->created_by == bare.created_by);
  CHECK(json::serialize(to_api_json(*bare_back)) == json::serialize(to_api_json(bare)));
}

TEST_CASE("a payload that is not one we wrote does not decode", "[json]") {
  auto good = json::parse(encode_payload(full_token())).as_object();
  auto decodes = [](const json::value& payload) {
    return decode_record({"id", {}, json::serialize(payload), std::nullopt}).has_value();
  };
  REQUIRE(decodes(good));
  CHECK_FALSE(decode_record({"id", {}, "not json", std::nullopt}).has_value());
  CHECK_FALSE(decodes(json::array{}));
  for (auto field :
       {"name", "permissions", "cidrs", "created_at", "updated_at", "created_by", "updated_by"}) {
    INFO("without " << field);
    auto broken = good;
    broken.erase(field);
    CHECK_FALSE(decodes(broken));
  }
  auto unknown_permission = good;
  unknown_permission["permissions"] = json::array{"Superuser"};
  CHECK_FALSE(decodes(unknown_permission));
  auto unknown_actor = good;
  unknown_actor["created_by"] = json::object{{"id", "x"}, {"type", "user"}};
  CHECK_FALSE(decodes(unknown_actor));
}
