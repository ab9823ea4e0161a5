#include "tokenapi/token_value.hpp"

#include "tests/support/catch_tokenapi.hpp"

#include <catch2/catch.hpp>

#include <set>
#include <string>

using namespace tokengate;
using namespace tokengate::tokenapi;
using test::new_value;

namespace {

constexpr std::string_view base62 =
    "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

std::string hex(const store::digest& d) {
  static constexpr char digits[] = "0123456789abcdef";
  std::string out;
  for (auto b : d) {
    out.push_back(digits[b >> 4]);
    out.push_back(digits[b & 0xf]);
  }
  return out;
}

} // namespace

TEST_CASE("generated values carry the prefix, the length and a valid checksum", "[token-value]") {
  std::set<std::string> seen;
  for (int i = 0; i < 200; ++i) {
    auto v = new_value();
    INFO(v);
    CHECK(v.starts_with("tg_"));
    CHECK(v.size() == 52);
    CHECK(v.size() == value_length);
    CHECK(v.find_first_not_of(base62, 3) == std::string::npos);
    CHECK(well_formed(v));
    seen.insert(v);
  }
  CHECK(seen.size() == 200);
}

TEST_CASE("changing any one character of a value makes it malformed", "[token-value]") {
  const std::string others = std::string(base62) + "_-.+/= \t";
  for (int round = 0; round < 3; ++round) {
    const auto v = new_value();
    REQUIRE(well_formed(v));
    for (std::size_t pos = 0; pos < v.size(); ++pos) {
      for (char c : others) {
        if (c == v[pos])
          continue;
        auto typo = v;
        typo[pos] = c;
        INFO("position " << pos << " set to '" << c << "'");
        CHECK_FALSE(well_formed(typo));
      }
    }
  }
}

TEST_CASE("values of the wrong prefix, length or alphabet are malformed", "[token-value]") {
  const auto v = new_value();
  CHECK_FALSE(well_formed(""));
  CHECK_FALSE(well_formed("tg_"));
  CHECK_FALSE(well_formed(v.substr(0, v.size() - 1)));
  CHECK_FALSE(well_formed(v + "0"));
  CHECK_FALSE(well_formed(v + v));
  CHECK_FALSE(well_formed(v.substr(3)));
  for (std::string_view prefix : {"TG_", "tg-", "xx_", "pat"})
    CHECK_FALSE(well_formed(std::string(prefix).append(v, 3)));
  CHECK_FALSE(well_formed(std::string(" ").append(v, 1)));
  CHECK_FALSE(well_formed(std::string(52, 'a')));
  // Swapping two distinct neighbouring characters is caught by the checksum too.
  for (std::size_t pos = 3; pos + 1 < v.size(); ++pos) {
    if (v[pos] == v[pos + 1])
      continue;
    auto swapped = v;
    std::swap(swapped[pos], swapped[pos + 1]);
    INFO("swapped at " << pos);
    CHECK_FALSE(well_formed(swapped));
  }
}

TEST_CASE("the digest of a value is its SHA-256", "[token-value]") {
  CHECK(hex(digest_of("abc")) ==
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  CHECK(hex(digest_of("")) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  // The per-thread context is reused: asking again gives the same answer.
  CHECK(hex(digest_of("abc")) ==
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  CHECK(hex(digest_of("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq")) ==
        "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  const auto v = new_value();
  CHECK(digest_of(v) == digest_of(std::string(v)));
  CHECK(digest_of(v) != digest_of(new_value()));
}

TEST_CASE("generated ids are lowercase version 4 UUIDs", "[token-value]") {
  std::set<std::string> seen;
  for (int i = 0; i < 200; ++i) {
    auto id = generate_id();
    REQUIRE(id.has_value());
    INFO(*id);
    CHECK(id->size() == 36);
    CHECK(looks_like_id(*id));
    CHECK((*id)[14] == '4');
    CHECK(std::string_view("89ab").find((*id)[19]) != std::string_view::npos);
    seen.insert(*id);
  }
  CHECK(seen.size() == 200);
}

TEST_CASE("only lowercase 8-4-4-4-12 UUIDs look like ids", "[token-value]") {
  CHECK(looks_like_id("0f8fad5b-d9cb-469f-a165-70867728950e"));
  CHECK(looks_like_id("00000000-0000-0000-0000-000000000000"));
  for (std::string text : {
           "",
           "self",
           "0F8FAD5B-D9CB-469F-A165-70867728950E",
           "0f8fad5b-d9cb-469f-a165-70867728950E",
           "0f8fad5b-d9cb-469f-a165-70867728950",
           "0f8fad5b-d9cb-469f-a165-70867728950e0",
           "0f8fad5bd9cb469fa16570867728950e",
           "0f8fad5b-d9cb-469f-a165_70867728950e",
           "0f8fad5bd-9cb-469f-a165-70867728950e",
           "0f8fad5g-d9cb-469f-a165-70867728950e",
           "{0f8fad5b-d9cb-469f-a165-70867728950e}",
           " 0f8fad5b-d9cb-469f-a165-70867728950e",
       }) {
    INFO('"' << text << '"');
    CHECK_FALSE(looks_like_id(text));
  }
}

TEST_CASE("anything shaped like a key value is found and redacted, and nothing else",
          "[token-value]") {
  const auto value = new_value();
  CHECK(holds_value(value));
  CHECK(redact_values(value) == "tg_[redacted]");
  CHECK(redact_values("/api-tokens/" + value + "/rotate") == "/api-tokens/tg_[redacted]/rotate");
  // Cut or extended by a paste, or twice in one path.
  CHECK(redact_values("/a/" + value.substr(0, 43) + "/b/" + value + "xyz") ==
        "/a/tg_[redacted]/b/tg_[redacted]");
  // A run one short of 40 characters, another prefix, or the prefix alone are not keys.
  const std::string short_run = "tg_" + std::string(39, 'a');
  for (const std::string& text :
       {short_run, std::string("/alerts/7"), std::string("tg_"), std::string("tg_tg_"),
        "TG_" + value.substr(3), "/x/tg-" + value.substr(3), std::string()}) {
    INFO(text);
    CHECK_FALSE(holds_value(text));
    CHECK(redact_values(text) == text);
  }
  CHECK(holds_value(short_run + "a"));
  CHECK(redact_values("tg_tg_" + value.substr(3)) == "tg_tg_[redacted]");
  // A key pasted twice, or two keys run together: "tg" is base62, each is still found.
  const auto other = new_value();
  CHECK(redact_values(value + value) == "tg_[redacted]tg_[redacted]");
  CHECK(redact_values("/x/" + value + other + "/y") == "/x/tg_[redacted]tg_[redacted]/y");
  for (const auto& pasted : {value + value, value + other + value}) {
    const auto out = redact_values(pasted);
    CHECK(out.find(value.substr(3)) == std::string::npos);
    CHECK(out.find(other.substr(3)) == std::string::npos);
  }
}
