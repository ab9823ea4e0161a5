#include "tokenapi/token_value.hpp"

#include <boost/crc.hpp>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <array>
#include <memory>

namespace tokengate::tokenapi {
namespace {

constexpr std::string_view base62 =
    "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
constexpr std::size_t random_chars = 43;  // 43 * log2(62) = 256.03 bits
constexpr std::size_t checksum_chars = 6; // 62^6 > 2^32

constexpr std::array<std::int8_t, 256> base62_values = [] {
  std::array<std::int8_t, 256> table{};
  table.fill(-1);
  for (std::size_t i = 0; i < base62.size(); ++i)
    table[static_cast<unsigned char>(base62[i])] = static_cast<std::int8_t>(i);
  return table;
}();

std::uint32_t crc32(std::string_view s) noexcept {
  boost::crc_32_type crc;
  crc.process_bytes(s.data(), s.size());
  return crc.checksum();
}

/// Whether `chars`, a value's characters after "tg_", are base62 and end in the checksum of
/// the value they make with "tg_".
bool checksum_holds(std::string_view chars) noexcept {
  if (chars.size() != value_length - value_prefix.size())
    return false;
  std::uint64_t checksum = 0;
  for (std::size_t i = 0; i < chars.size(); ++i) {
    const auto v = base62_values[static_cast<unsigned char>(chars[i])];
    if (v < 0)
      return false;
    if (i >= chars.size() - checksum_chars)
      checksum = checksum * 62 + static_cast<std::uint64_t>(v);
  }
  boost::crc_32_type crc;
  crc.process_bytes(value_prefix.data(), value_prefix.size());
  crc.process_bytes(chars.data(), chars.size() - checksum_chars);
  return checksum == crc.checksum();
}

/// A key-shaped run has at least this many base62 characters after the prefix.
constexpr std::size_t shaped_chars = 40;

/// How many base62 characters `text` has from `at` on, up to another key's prefix (a key
/// pasted twice is two runs: "tg" is base62 too).
std::size_t base62_run(std::string_view text, std::size_t at) noexcept {
  std::size_t n = 0;
  while (at + n < text.size() && base62_values[static_cast<unsigned char>(text[at + n])] >= 0 &&
         text.compare(at + n, value_prefix.size(), value_prefix) != 0)
    ++n;
  return n;
}

void append_checksum(std::string& out, std::uint32_t crc) {
  char digits[checksum_chars];
  for (std::size_t i = checksum_chars; i-- > 0; crc /= 62)
    digits[i] = base62[crc % 62];
  out.append(digits, checksum_chars);
}

} // namespace

bool holds_value(std::string_view text) noexcept {
  for (auto at = text.find(value_prefix); at != std::string_view::npos;
       at = text.find(value_prefix, at + 1))
    if (base62_run(text, at + value_prefix.size()) >= shaped_chars)
      return true;
  return false;
}

bool holds_bare_value(std::string_view text) noexcept {
  constexpr auto bare = value_length - value_prefix.size();
  std::size_t run = 0; // base62 characters ending at i
  for (std::size_t i = 0; i < text.size(); ++i) {
    run = base62_values[static_cast<unsigned char>(text[i])] >= 0 ? run + 1 : 0;
    if (run >= bare && checksum_holds(text.substr(i + 1 - bare, bare)))
      return true;
  }
  return false;
}

std::string redact_values(std::string_view text) {
  std::string out;
  std::size_t done = 0;
  for (auto at = text.find(value_prefix); at != std::string_view::npos;
       at = text.find(value_prefix, at + 1)) {
    const auto from = at + value_prefix.size();
    const auto run = base62_run(text, from);
    if (run < shaped_chars)
      continue;
    out.append(text.substr(done, from - done)).append("[redacted]");
    done = from + run;
    at = done - 1;
  }
  return out.append(text.substr(done));
}

std::optional<std::string> generate_value() {
  std::string value(value_prefix);
  value.reserve(value_length);
  std::array<unsigned char, 64> pool{};
  // Rejection sampling keeps every character uniform: bytes >= 248 (4 * 62) are skipped.
  while (value.size() < value_prefix.size() + random_chars) {
    if (RAND_bytes(pool.data(), static_cast<int>(pool.size())) != 1)
      return std::nullopt;
    for (unsigned char b : pool) {
      if (b >= 248)
        continue;
      value.push_back(base62[b % 62]);
      if (value.size() == value_prefix.size() + random_chars)
        break;
    }
  }
  append_checksum(value, crc32(value));
  return value;
}

bool well_formed(std::string_view value) noexcept {
  return value.size() == value_length && value.starts_with(value_prefix) &&
         checksum_holds(value.substr(value_prefix.size()));
}

store::digest digest_of(std::string_view value) noexcept {
  // One digest context per thread, reused: no allocation or algorithm fetch per request.
  struct context {
    EVP_MD* md = EVP_MD_fetch(nullptr, "SHA256", nullptr);
    EVP_MD_CTX* ctx = EVP_MD_CTX_new();
    ~context() {
      EVP_MD_CTX_free(ctx);
      EVP_MD_free(md);
    }
  };
  thread_local context c;
  store::digest out{};
  unsigned int length = 0;
  EVP_DigestInit_ex2(c.ctx, c.md, nullptr);
  EVP_DigestUpdate(c.ctx, value.data(), value.size());
  EVP_DigestFinal_ex(c.ctx, out.data(), &length);
  return out;
}

std::optional<std::string> generate_id() {
  std::array<unsigned char, 16> b{};
  if (RAND_bytes(b.data(), static_cast<int>(b.size())) != 1)
    return std::nullopt;
  b[6] = static_cast<unsigned char>((b[6] & 0x0f) | 0x40); // version 4
  b[8] = static_cast<unsigned char>((b[8] & 0x3f) | 0x80); // RFC 4122 variant
  constexpr std::string_view hex = "0123456789abcdef";
  std::string id;
  id.reserve(36);
  for (std::size_t i = 0; i < b.size(); ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10)
      id.push_back('-');
    id.push_back(hex[b[i] >> 4]);
    id.push_back(hex[b[i] & 0xf]);
  }
  return id;
}

bool looks_like_id(std::string_view text) noexcept {
  if (text.size() != 36)
    return false;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    const bool dash = i == 8 || i == 13 || i == 18 || i == 23;
    if (dash ? c != '-' : !((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
      return false;
  }
  return true;
}

} // namespace tokengate::tokenapi
