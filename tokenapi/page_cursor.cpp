// The paging of GET /api-tokens: its query parameters and its cursor.
#include "tokenapi/page_cursor.hpp"

#include "store/hex.hpp"
#include "tokenapi/token.hpp"

#include <cstdint>

namespace tokengate::tokenapi {
namespace {

constexpr std::string_view base64url =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

} // namespace

std::optional<std::string> percent_decoded(std::string_view text) {
  using store::hex_value;
  std::string out;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '%') {
      out.push_back(text[i]);
      continue;
    }
    const int high = i + 2 < text.size() ? hex_value(text[i + 1]) : -1;
    const int low = high >= 0 ? hex_value(text[i + 2]) : -1;
    if (low < 0)
      return std::nullopt;
    out.push_back(static_cast<char>(high * 16 + low));
    i += 2;
  }
  return out;
}

api_result<std::optional<std::string>> query_param(std::string_view query, std::string_view name) {
  std::optional<std::string> found;
  const auto broken = [] { return bad_request("the query has a broken %-escape"); };
  while (!query.empty()) {
    const auto amp = query.find('&');
    auto pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view{} : query.substr(amp + 1);
    const auto eq = pair.find('=');
    auto key = percent_decoded(pair.substr(0, eq));
    auto value =
        percent_decoded(eq == std::string_view::npos ? std::string_view{} : pair.substr(eq + 1));
    if (!key || !value)
      return broken();
    if (*key != name)
      continue;
    if (found)
      return bad_request("query parameter \"" + std::string(name) + "\" is given more than once");
    found = std::move(value);
  }
  return found;
}

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
  if (!sendable_id(out))
    return std::nullopt;
  return out;
}

} // namespace tokengate::tokenapi
