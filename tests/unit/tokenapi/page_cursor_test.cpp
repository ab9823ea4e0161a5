// The page cursor of GET /api-tokens: opaque to clients, and only ever a token id to the API.
#include "tokenapi/page_cursor.hpp"
#include "tokenapi/token_value.hpp"

#include <catch2/catch.hpp>

using namespace tokengate;

TEST_CASE("a cursor names the id it was made from", "[cursor]") {
  for (int i = 0; i < 100; ++i) {
    const auto id = tokenapi::generate_id();
    REQUIRE(id);
    const auto cursor = tokenapi::encode_cursor(*id);
    CHECK(cursor.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                                   "0123456789-_") == std::string::npos); // safe in a query
    CHECK(cursor.find(*id) == std::string::npos);                         // not the id as is
    const auto decoded = tokenapi::decode_cursor(cursor);
    REQUIRE(decoded);
    CHECK(*decoded == *id);
  }
}

TEST_CASE("a cursor that does not decode to a token id is refused", "[cursor]") {
  const std::string id = "6f1c2a34-0000-4000-8000-000000000001";
  const auto good = tokenapi::encode_cursor(id);
  CHECK(tokenapi::decode_cursor(good));
  CHECK_FALSE(tokenapi::decode_cursor(""));
  CHECK_FALSE(tokenapi::decode_cursor(good + "AA"));                // a byte too many
  CHECK_FALSE(tokenapi::decode_cursor(good.substr(1)));             // shifted bits
  CHECK_FALSE(tokenapi::decode_cursor(good.substr(0, 20) + "+/=")); // base64, not base64url
  CHECK_FALSE(tokenapi::decode_cursor(tokenapi::encode_cursor("../../etc/passwd")));
  CHECK_FALSE(tokenapi::decode_cursor(tokenapi::encode_cursor(id.substr(0, 35) + "G")));
}
