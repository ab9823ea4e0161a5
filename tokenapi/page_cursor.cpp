// The page cursor of GET /api-tokens.
#include "tokenapi/page_cursor.hpp"

#include "tokenapi/token_value.hpp"

#include <cstdint>

namespace tokengate::tokenapi {
namespace {

constexpr std::string_view base64url =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

} // namespace

std::string encode_cursor(std::string_view id) {
  std::string out;
  std::uint32_t acc = 0;
  int bits = 0;
  for (unsigned char c : id) {
    acc = (acc << 8) | c;
    bits += 8;
    while (bits >= 6) {
      bits -= 6;
      out.push_back(base64url[(acc >> bits) & 0x3f]);
    }
  }
  if (bits > 0)
    out.push_back(base64url[(acc << (6 - bits)) & 0x3f]);
  return out;
}

std::optional<std::string> decode_cursor(std::string_view cursor) {
  std::string out;
  std::uint32_t acc = 0;
  int bits = 0;
  for (char c : cursor) {
    const auto pos = base64url.find(c);
    if (pos == std::string_view::npos)
      return std::nullopt;
    acc = (acc << 6) | static_cast<std::uint32_t>(pos);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xff));
    }
  }
  if (!looks_like_id(out))
    return std::nullopt;
  return out;
}

} // namespace tokengate::tokenapi
