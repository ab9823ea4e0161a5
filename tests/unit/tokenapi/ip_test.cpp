#include "tests/support/catch_ip.hpp"
#include "tokenapi/ip.hpp"

#include <catch2/catch.hpp>

#include <string>

using namespace tokengate::tokenapi;

using tokengate::test::ip;

namespace {

cidr_block cidr(std::string_view text) {
  auto b = cidr_block::parse(text);
  INFO("block: " << text);
  REQUIRE(b.has_value());
  return *b;
}

bool in(std::string_view block, std::string_view address) {
  return cidr(block).contains(ip(address));
}

} // namespace

TEST_CASE("IPv4 and IPv6 addresses parse and print canonically", "[ip]") {
  CHECK(ip("10.1.2.3").is_v4());
  CHECK(ip("10.1.2.3").to_string() == "10.1.2.3");
  CHECK(ip("0.0.0.0").to_string() == "0.0.0.0");
  CHECK(ip("255.255.255.255").to_string() == "255.255.255.255");

  CHECK_FALSE(ip("::1").is_v4());
  CHECK(ip("::1").to_string() == "::1");
  CHECK(ip("2001:DB8:0:0:0:0:0:1").to_string() == "2001:db8::1");
  CHECK(ip("2001:db8:0:0:1:0:0:1").to_string() == "2001:db8::1:0:0:1");
  CHECK(ip("2001:db8::1") == ip("2001:0db8:0000::0001"));
}

TEST_CASE("an IPv4-mapped IPv6 address is the IPv4 address", "[ip]") {
  auto mapped = ip("::ffff:10.1.2.3");
  CHECK(mapped.is_v4());
  CHECK(mapped == ip("10.1.2.3"));
  CHECK(mapped.to_string() == "10.1.2.3");

  // As a dual-stack listener reports the peer: 16 bytes.
  std::array<std::uint8_t, 16> bytes{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 1, 2, 3};
  CHECK(ip_address::v6(bytes) == ip("10.1.2.3"));
  CHECK(ip("10.1.2.3").as_v6_bytes() == bytes);
}

TEST_CASE("malformed addresses are rejected", "[ip]") {
  for (std::string text : {"", " 1.2.3.4", "1.2.3.4 ", "1.2.3", "1.2.3.4.5", "01.2.3.4", "1.2.3.04",
                           "256.1.1.1", "1.2.3.-1", "fe80::1%eth0", "[::1]", "::1::2",
                           "2001:db8::g", "1:2:3:4:5:6:7:8:9", "localhost", "0x0a.0.0.1"}) {
    INFO("address: \"" << text << '"');
    CHECK_FALSE(ip_address::parse(text).has_value());
  }
}

TEST_CASE("a bare address is a block of one host", "[cidr]") {
  CHECK(cidr("1.2.3.4").to_string() == "1.2.3.4/32");
  CHECK(cidr("1.2.3.4") == cidr("1.2.3.4/32"));
  CHECK(cidr("2001:db8::7").to_string() == "2001:db8::7/128");
  CHECK(cidr("::ffff:1.2.3.4").to_string() == "1.2.3.4/32");

  CHECK(in("1.2.3.4", "1.2.3.4"));
  CHECK_FALSE(in("1.2.3.4", "1.2.3.5"));
  CHECK_FALSE(in("1.2.3.4", "1.2.3.3"));
  CHECK(in("2001:db8::7", "2001:db8::7"));
  CHECK_FALSE(in("2001:db8::7", "2001:db8::6"));
  CHECK_FALSE(in("2001:db8::7", "2001:db8::8"));
}

TEST_CASE("host bits below the prefix are cleared", "[cidr]") {
  CHECK(cidr("10.1.2.3/8").to_string() == "10.0.0.0/8");
  CHECK(cidr("10.1.2.3/8") == cidr("10.0.0.0/8"));
  CHECK(cidr("172.20.1.1/12").to_string() == "172.16.0.0/12");
  CHECK(cidr("192.0.2.255/31").to_string() == "192.0.2.254/31");
  CHECK(cidr("1.2.3.4/0").to_string() == "0.0.0.0/0");
  CHECK(cidr("2001:db8:abcd::1/32").to_string() == "2001:db8::/32");
  CHECK(cidr("2001:db8::ff/121").to_string() == "2001:db8::80/121");
  CHECK(cidr("2001:db8::1/0").to_string() == "::/0");
  CHECK(cidr("10.0.0.0/8").prefix_length() == 8);
  CHECK(cidr("10.0.0.0/8").network() == ip("10.0.0.0"));
}

TEST_CASE("malformed CIDR blocks are rejected", "[cidr]") {
  for (std::string text : {"10.0.0.0/33",
                           "1.2.3",
                           "01.2.3.4",
                           "::1/129",
                           "10.0.0.0/",
                           "10.0.0.0/x",
                           "",
                           "/8",
                           "fe80::1%eth0",
                           "fe80::1%eth0/64",
                           " 1.2.3.4",
                           "1.2.3.4 ",
                           "10.0.0.0/8 ",
                           "10.0.0.0/-1",
                           "10.0.0.0/+8",
                           "10.0.0.0/8/8",
                           "10.0.0.0/1000",
                           "10.0.0.0/4294967304",
                           "::/",
                           "::ffff:10.0.0.0/129",
                           "[::1]/128",
                           "10.0.0.0 /8",
                           "10.0.0.0/ 8",
                           "10.0.0.0/08",
                           "10.0.0.1/032",
                           "::/00",
                           "::ffff:10.0.0.0/0104"}) {
    INFO("block: \"" << text << '"');
    CHECK_FALSE(cidr_block::parse(text).has_value());
  }
}

TEST_CASE("an IPv4-mapped peer matches IPv4 blocks", "[cidr]") {
  CHECK(in("10.0.0.0/8", "::ffff:10.1.2.3"));
  CHECK_FALSE(in("10.0.0.0/8", "::ffff:11.1.2.3"));
  CHECK(in("10.1.2.3", "::ffff:10.1.2.3"));
}

TEST_CASE("a block written in IPv4-mapped IPv6 form is the IPv4 block", "[cidr]") {
  CHECK(cidr("::ffff:10.0.0.0/104") == cidr("10.0.0.0/8"));
  CHECK(cidr("::ffff:10.0.0.0/104").to_string() == "10.0.0.0/8");
  CHECK(cidr("::ffff:10.9.9.9/104").to_string() == "10.0.0.0/8");
  CHECK(in("::ffff:10.0.0.0/104", "10.200.0.1"));
  CHECK_FALSE(in("::ffff:10.0.0.0/104", "11.0.0.1"));
  // The whole mapped range is every IPv4 address and no IPv6 one.
  CHECK(cidr("::ffff:0.0.0.0/96").to_string() == "0.0.0.0/0");
  CHECK(in("::ffff:0.0.0.0/96", "203.0.113.9"));
  CHECK_FALSE(in("::ffff:0.0.0.0/96", "::1"));
}

TEST_CASE("an IPv6 block never holds an IPv4 address", "[cidr][spelling]") {
  CHECK_FALSE(in("::/0", "1.2.3.4"));
  CHECK_FALSE(in("::/0", "::ffff:1.2.3.4"));
  CHECK(in("::/0", "::1"));
  CHECK(in("::/0", "2001:db8::1"));
  CHECK_FALSE(in("::/80", "1.2.3.4")); // ::ffff:1.2.3.4 starts with 80 zero bits
  CHECK_FALSE(in("::/8", "10.1.2.3"));
  CHECK_FALSE(in("2001:db8::/32", "1.2.3.4"));
  CHECK_FALSE(in("::1", "0.0.0.1"));
}

TEST_CASE("a mapped block shorter than /96 is refused: it would admit more than it spells",
          "[cidr][spelling]") {
  for (const char* text : {"::ffff:10.0.0.0/8", "::ffff:10.0.0.0/95", "::ffff:0.0.0.0/0",
                           "::FFFF:10.0.0.0/80", "::ffff:a00:0/8"}) {
    INFO(text);
    CHECK_FALSE(cidr_block::parse(text).has_value());
  }
  CHECK(cidr("::ffff:a00:0/104").to_string() == "10.0.0.0/8");
  CHECK(cidr("::ffff:10.0.0.0/96").to_string() == "0.0.0.0/0");
}

TEST_CASE("a NUL or any other stray character is never cut off", "[cidr][spelling]") {
  using namespace std::string_literals;
  for (const auto& text : {"1.2.3.4\0junk/8"s, "1.2.3.4\0"s, "10.0.0.0/8\0"s, "::1\0/128"s,
                           "1.2.3.4x/8"s, "1.2.3.4/8x"s, "010.0.0.1"s, "1.2.3"s, "0x7f.0.0.1"s}) {
    INFO(text);
    CHECK_FALSE(cidr_block::parse(text).has_value());
    if (text.find('/') == std::string::npos)
      CHECK_FALSE(ip_address::parse(text).has_value());
  }
}

TEST_CASE("an IPv4 block never holds a non-mapped IPv6 address", "[cidr]") {
  CHECK_FALSE(in("0.0.0.0/0", "::1"));
  CHECK_FALSE(in("0.0.0.0/0", "2001:db8::1"));
  // Leading bytes equal to the block's: 0a00:0001:: starts with 10.0.0.1.
  CHECK_FALSE(in("10.0.0.0/8", "a00:1::"));
  // IPv4-compatible (deprecated) form ::10.0.0.1 is IPv6, not 10.0.0.1.
  CHECK_FALSE(in("10.0.0.0/8", "::10.0.0.1"));
  CHECK_FALSE(in("10.0.0.1", "::a00:1"));
}

TEST_CASE("blocks hold exactly the addresses between their first and last", "[cidr]") {
  SECTION("/0") {
    CHECK(in("0.0.0.0/0", "0.0.0.0"));
    CHECK(in("0.0.0.0/0", "255.255.255.255"));
    CHECK(in("::/0", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"));
  }
  SECTION("/8") {
    CHECK(in("10.0.0.0/8", "10.0.0.0"));
    CHECK(in("10.0.0.0/8", "10.255.255.255"));
    CHECK_FALSE(in("10.0.0.0/8", "9.255.255.255"));
    CHECK_FALSE(in("10.0.0.0/8", "11.0.0.0"));
  }
  SECTION("/12, not on a byte boundary") {
    CHECK(in("172.16.0.0/12", "172.16.0.0"));
    CHECK(in("172.16.0.0/12", "172.31.255.255"));
    CHECK_FALSE(in("172.16.0.0/12", "172.15.255.255"));
    CHECK_FALSE(in("172.16.0.0/12", "172.32.0.0"));
  }
  SECTION("/31") {
    CHECK(in("192.0.2.4/31", "192.0.2.4"));
    CHECK(in("192.0.2.4/31", "192.0.2.5"));
    CHECK_FALSE(in("192.0.2.4/31", "192.0.2.3"));
    CHECK_FALSE(in("192.0.2.4/31", "192.0.2.6"));
  }
  SECTION("/32") {
    CHECK(in("255.255.255.255/32", "255.255.255.255"));
    CHECK_FALSE(in("255.255.255.255/32", "255.255.255.254"));
  }
  SECTION("/32 IPv6") {
    CHECK(in("2001:db8::/32", "2001:db8::"));
    CHECK(in("2001:db8::/32", "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff"));
    CHECK_FALSE(in("2001:db8::/32", "2001:db7:ffff:ffff:ffff:ffff:ffff:ffff"));
    CHECK_FALSE(in("2001:db8::/32", "2001:db9::"));
  }
  SECTION("/127") {
    CHECK(in("2001:db8::/127", "2001:db8::"));
    CHECK(in("2001:db8::/127", "2001:db8::1"));
    CHECK_FALSE(in("2001:db8::/127", "2001:db8::2"));
    CHECK_FALSE(in("2001:db8::2/127", "2001:db8::1"));
  }
  SECTION("/128") {
    CHECK(in("2001:db8::ffff/128", "2001:db8::ffff"));
    CHECK_FALSE(in("2001:db8::ffff/128", "2001:db8::1:0"));
  }
}
