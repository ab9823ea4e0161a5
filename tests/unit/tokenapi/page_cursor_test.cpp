// The page cursor of GET /api-tokens: opaque to clients, and only ever a token id to the API.
#include "tokenapi/page_cursor.hpp"
#include "tokenapi/token_value.hpp"

#include <catch2/catch.hpp>

#include <string>
#include <vector>

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
  CHECK_FALSE(tokenapi::decode_cursor(tokenapi::encode_cursor(id.substr(0, 35) + " ")));
  CHECK_FALSE(tokenapi::decode_cursor(tokenapi::encode_cursor(std::string("a\0b", 3))));
  CHECK_FALSE(tokenapi::decode_cursor(tokenapi::encode_cursor(std::string(129, 'a'))));
}

TEST_CASE("the cursor of any id a token may have names it, not only the API's UUIDs", "[cursor]") {
  // A fleet's row written around the API may have any id of 1 to 128 letters, digits, '-', '_'
  // or '.': its token is served and listed, so the `next` that ends on it must page on.
  const std::vector<std::string> ids{"ops-1", "A", "Svc_token.2", std::string(128, 'z'),
                                     "6F1C2A34-0000-4000-8000-000000000001"};
  for (const auto& id : ids) {
    const auto decoded = tokenapi::decode_cursor(tokenapi::encode_cursor(id));
    REQUIRE(decoded);
    CHECK(*decoded == id);
  }
}
