#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace tokengate::tokenapi {

/// An IPv4 or IPv6 address. IPv4-mapped IPv6 addresses (::ffff:a.b.c.d) are held as IPv4, so a
/// dual-stack listener's peers match IPv4 blocks.
class ip_address {
public:
  /// Parses dotted-quad IPv4 or RFC 4291 IPv6 text (no zone ids, no brackets).
  [[nodiscard]] static std::optional<ip_address> parse(std::string_view text) noexcept;
  [[nodiscard]] static ip_address v4(std::array<std::uint8_t, 4> octets) noexcept;
  [[nodiscard]] static ip_address v6(const std::array<std::uint8_t, 16>& bytes) noexcept;

  [[nodiscard]] bool is_v4() const noexcept { return v4_; }
  /// The 4 (IPv4) or 16 (IPv6) bytes in network order; IPv4 uses the first 4.
  [[nodiscard]] const std::array<std::uint8_t, 16>& bytes() const noexcept { return bytes_; }
  /// IPv4 as ::ffff:a.b.c.d, IPv6 unchanged.
  [[nodiscard]] std::array<std::uint8_t, 16> as_v6_bytes() const noexcept;
  /// Canonical text: dotted quad, or RFC 5952 IPv6.
  [[nodiscard]] std::string to_string() const;

  bool operator==(const ip_address&) const = default;

private:
  friend class cidr_block;
  std::array<std::uint8_t, 16> bytes_{};
  bool v4_ = true;
};

/// A CIDR block such as 10.0.0.0/8 or 2001:db8::/32. A bare address is a block of one host.
class cidr_block {
public:
  /// Parses "address[/prefix]". Host bits below the prefix are cleared (10.1.2.3/8 is
  /// 10.0.0.0/8). An IPv4-mapped address takes a prefix of 96 to 128 and makes the IPv4 block
  /// it spells (::ffff:10.0.0.0/104 is 10.0.0.0/8). nullopt for anything else.
  [[nodiscard]] static std::optional<cidr_block> parse(std::string_view text) noexcept;

  /// Whether `a` lies in this block. IPv4 addresses (also those a dual-stack socket shows as
  /// ::ffff:a.b.c.d) lie in IPv4 blocks only, IPv6 addresses in IPv6 blocks only: ::/0 is
  /// every IPv6 address, not every address.
  [[nodiscard]] bool contains(const ip_address& a) const noexcept;
  [[nodiscard]] unsigned prefix_length() const noexcept { return prefix_; }
  [[nodiscard]] const ip_address& network() const noexcept { return network_; }
  /// Canonical text, always with a prefix: "10.0.0.0/8", "2001:db8::/32", "1.2.3.4/32".
  [[nodiscard]] std::string to_string() const;

  bool operator==(const cidr_block&) const = default;

private:
  ip_address network_;
  unsigned prefix_ = 0;
};

} // namespace tokengate::tokenapi
