#include "tokenapi/ip.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstring>

namespace tokengate::tokenapi {
namespace {

constexpr std::array<std::uint8_t, 12> mapped_prefix{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

// True when the first `bits` bits of `a` and `b` agree.
bool same_prefix(const std::uint8_t* a, const std::uint8_t* b, unsigned bits) noexcept {
  const unsigned whole = bits / 8;
  if (std::memcmp(a, b, whole) != 0)
    return false;
  const unsigned rest = bits % 8;
  if (rest == 0)
    return true;
  const auto mask = static_cast<std::uint8_t>(0xff << (8 - rest));
  return ((a[whole] ^ b[whole]) & mask) == 0;
}

void clear_host_bits(std::array<std::uint8_t, 16>& bytes, unsigned prefix, unsigned width) {
  for (unsigned bit = prefix; bit < width; ++bit)
    bytes[bit / 8] &= static_cast<std::uint8_t>(~(0x80u >> (bit % 8)));
}

} // namespace

std::optional<ip_address> ip_address::parse(std::string_view text) noexcept {
  char buffer[INET6_ADDRSTRLEN];
  if (text.empty() || text.size() >= sizeof buffer)
    return std::nullopt;
  // inet_pton reads a C string: a NUL (or anything else) after a valid prefix must not be cut
  // off unseen.
  if (!std::all_of(text.begin(), text.end(), [](char c) {
        return std::isxdigit(static_cast<unsigned char>(c)) || c == '.' || c == ':';
      }))
    return std::nullopt;
  std::memcpy(buffer, text.data(), text.size());
  buffer[text.size()] = '\0';

  if (text.find(':') == std::string_view::npos) {
    std::array<std::uint8_t, 4> octets{};
    if (::inet_pton(AF_INET, buffer, octets.data()) != 1)
      return std::nullopt;
    return v4(octets);
  }
  std::array<std::uint8_t, 16> bytes{};
  if (::inet_pton(AF_INET6, buffer, bytes.data()) != 1)
    return std::nullopt;
  return v6(bytes);
}

ip_address ip_address::v4(std::array<std::uint8_t, 4> octets) noexcept {
  ip_address a;
  std::copy(octets.begin(), octets.end(), a.bytes_.begin());
  a.v4_ = true;
  return a;
}

ip_address ip_address::v6(const std::array<std::uint8_t, 16>& bytes) noexcept {
  if (std::equal(mapped_prefix.begin(), mapped_prefix.end(), bytes.begin()))
    return v4({bytes[12], bytes[13], bytes[14], bytes[15]});
  ip_address a;
  a.bytes_ = bytes;
  a.v4_ = false;
  return a;
}

std::array<std::uint8_t, 16> ip_address::as_v6_bytes() const noexcept {
  if (!v4_)
    return bytes_;
  std::array<std::uint8_t, 16> out{};
  std::copy(mapped_prefix.begin(), mapped_prefix.end(), out.begin());
  std::copy_n(bytes_.begin(), 4, out.begin() + 12);
  return out;
}

std::string ip_address::to_string() const {
  char buffer[INET6_ADDRSTRLEN];
  ::inet_ntop(v4_ ? AF_INET : AF_INET6, bytes_.data(), buffer, sizeof buffer);
  return buffer;
}

std::optional<cidr_block> cidr_block::parse(std::string_view text) noexcept {
  const auto slash = text.find('/');
  auto address = ip_address::parse(text.substr(0, slash));
  if (!address)
    return std::nullopt;

  // An IPv4 address written in IPv6 form (::ffff:a.b.c.d) takes an IPv6 prefix length.
  const bool parsed_as_mapped = address->is_v4() && text.find(':') != std::string_view::npos;
  const unsigned written_width = address->is_v4() && !parsed_as_mapped ? 32 : 128;
  unsigned prefix = written_width;
  if (slash != std::string_view::npos) {
    auto digits = text.substr(slash + 1);
    // No leading zero ("/08"), as none is taken in an IPv4 address's numbers either.
    if (digits.empty() || digits.size() > 3 || (digits.size() > 1 && digits[0] == '0') ||
        !std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; }))
      return std::nullopt;
    std::from_chars(digits.data(), digits.data() + digits.size(), prefix);
    if (prefix > written_width)
      return std::nullopt;
  }

  cidr_block block;
  if (parsed_as_mapped) {
    // ::ffff:a.b.c.d/n is the IPv4 block a.b.c.d/(n-96). With a shorter prefix it would be an
    // IPv6 block far larger than the IPv4 block it spells (::ffff:10.0.0.0/8 is ::/8): refused.
    if (prefix < 96)
      return std::nullopt;
    prefix -= 96;
  }
  block.network_ = *address;
  block.prefix_ = prefix;
  clear_host_bits(block.network_.bytes_, prefix, block.network_.v4_ ? 32 : 128);
  return block;
}

bool cidr_block::contains(const ip_address& a) const noexcept {
  return a.v4_ == network_.v4_ && same_prefix(network_.bytes_.data(), a.bytes_.data(), prefix_);
}

std::string cidr_block::to_string() const {
  return network_.to_string() + "/" + std::to_string(prefix_);
}

} // namespace tokengate::tokenapi
