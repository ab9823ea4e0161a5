// The client address a request is decided on: the TCP peer, or, behind trusted proxies only,
// the right-most X-Forwarded-For address that is not itself a trusted proxy.
#include "proxy/client_address.hpp"
#include "tests/support/catch_ip.hpp"

#include <catch2/catch.hpp>

#include <string>
#include <vector>

using namespace tokengate;
using namespace tokengate::proxy;
using tokenapi::cidr_block;
using tokenapi::ip_address;

using tokengate::test::ip;

namespace {

std::vector<cidr_block> blocks(std::initializer_list<std::string_view> texts) {
  std::vector<cidr_block> out;
  for (auto t : texts) {
    auto b = cidr_block::parse(t);
    REQUIRE(b.has_value());
    out.push_back(*b);
  }
  return out;
}

// The client address of a request with these field lines (each ending in CRLF).
std::string client_of(std::string_view peer, const std::string& fields,
                      const std::vector<cidr_block>& proxies) {
  const std::string text = "GET / HTTP/1.1\r\nHost: a\r\n" + fields + "\r\n";
  http1::head h;
  REQUIRE(http1::parse_request(text, h).has_value());
  return client_address(ip(peer), h, proxies).to_string();
}

std::vector<cidr_block> trusted() { return blocks({"10.0.0.0/8", "192.168.1.1"}); }

} // namespace

TEST_CASE("an untrusted peer is the client, whatever X-Forwarded-For says", "[client_address]") {
  CHECK(client_of("203.0.113.9", "X-Forwarded-For: 1.2.3.4\r\n", trusted()) == "203.0.113.9");
  CHECK(client_of("203.0.113.9", "X-Forwarded-For: 10.0.0.1\r\n", trusted()) == "203.0.113.9");
  CHECK(client_of("203.0.113.9", "", trusted()) == "203.0.113.9");
  CHECK(client_of("10.0.0.1", "X-Forwarded-For: 1.2.3.4\r\n", {}) == "10.0.0.1");
  CHECK(client_of("192.168.1.2", "X-Forwarded-For: 1.2.3.4\r\n", trusted()) == "192.168.1.2");
}

TEST_CASE("behind a trusted peer the right-most untrusted entry is the client",
          "[client_address]") {
  CHECK(client_of("10.0.0.1", "X-Forwarded-For: 1.2.3.4\r\n", trusted()) == "1.2.3.4");
  CHECK(client_of("10.0.0.1", "X-Forwarded-For: 1.2.3.4, 10.0.0.2\r\n", trusted()) == "1.2.3.4");
  // The left-most entries are whatever the client chose to send: never believed.
  CHECK(client_of("10.0.0.1", "X-Forwarded-For: 6.6.6.6, 1.2.3.4, 192.168.1.1\r\n", trusted()) ==
        "1.2.3.4");
  CHECK(client_of("10.0.0.1", "x-forwarded-for:5.6.7.8,1.2.3.4\r\n", trusted()) == "1.2.3.4");
  CHECK(client_of("192.168.1.1", "X-Forwarded-For:  1.2.3.4 ,\t10.9.9.9 \r\n", trusted()) ==
        "1.2.3.4");
  CHECK(client_of("10.0.0.1", "", trusted()) == "10.0.0.1");
}

TEST_CASE("several X-Forwarded-For fields form one list", "[client_address]") {
  CHECK(client_of("10.0.0.1", "X-Forwarded-For: 5.6.7.8\r\nX-Forwarded-For: 10.0.0.3\r\n",
                  trusted()) == "5.6.7.8");
  CHECK(client_of("10.0.0.1",
                  "X-Forwarded-For: 6.6.6.6, 1.1.1.1\r\nX-Other: x\r\n"
                  "X-Forwarded-For: 10.0.0.3, 10.0.0.4\r\n",
                  trusted()) == "1.1.1.1");
  CHECK(client_of("10.0.0.1", "X-Forwarded-For: 6.6.6.6\r\nX-Forwarded-For: 2.2.2.2\r\n",
                  trusted()) == "2.2.2.2");
}

TEST_CASE("when every hop is trusted the left-most one is the client", "[client_address]") {
  CHECK(client_of("10.0.0.1", "X-Forwarded-For: 10.0.0.5, 10.0.0.6\r\n", trusted()) == "10.0.0.5");
  CHECK(client_of("10.0.0.1", "X-Forwarded-For: 10.0.0.7\r\nX-Forwarded-For: 192.168.1.1\r\n",
                  trusted()) == "10.0.0.7");
}

TEST_CASE("an entry that is not an address stops the walk at the last trusted hop",
          "[client_address]") {
  CHECK(client_of("10.0.0.1", "X-Forwarded-For: 1.2.3.4, unknown, 10.0.0.7\r\n", trusted()) ==
        "10.0.0.7");
  CHECK(client_of("10.0.0.1", "X-Forwarded-For: 1.2.3.4, garbage\r\n", trusted()) == "10.0.0.1");
  CHECK(client_of("10.0.0.1", "X-Forwarded-For: 1.2.3.4, 1.2.3.4:5678\r\n", trusted()) ==
        "10.0.0.1");
  CHECK(client_of("10.0.0.1", "X-Forwarded-For: 1.2.3.4,, 10.0.0.8\r\n", trusted()) == "10.0.0.8");
  CHECK(client_of("10.0.0.1", "X-Forwarded-For: 1.2.3.4\r\nX-Forwarded-For: _\r\n", trusted()) ==
        "10.0.0.1");
  // An empty entry is not an address wherever it stands, and a field with no value is one: the
  // fields are one list, as the upstream gets them.
  CHECK(client_of("10.0.0.1", "X-Forwarded-For: 1.2.3.4\r\nX-Forwarded-For: , 10.0.0.2\r\n",
                  trusted()) == "10.0.0.2");
  CHECK(client_of("10.0.0.1", "X-Forwarded-For: 1.2.3.4, 10.0.0.2,\r\n", trusted()) == "10.0.0.1");
  CHECK(client_of("10.0.0.1", "X-Forwarded-For: 1.2.3.4\r\nX-Forwarded-For:\r\n", trusted()) ==
        "10.0.0.1");
  CHECK(client_of("10.0.0.1",
                  "X-Forwarded-For: 1.2.3.4\r\nX-Forwarded-For:\r\nX-Forwarded-For: 10.0.0.3\r\n",
                  trusted()) == "10.0.0.3");
}

TEST_CASE("IPv6 peers and entries", "[client_address]") {
  const auto v6 = blocks({"fd00::/8", "10.0.0.0/8"});
  CHECK(client_of("fd00::1", "X-Forwarded-For: 2001:db8::1, fd00::2\r\n", v6) == "2001:db8::1");
  CHECK(client_of("fd00::1", "X-Forwarded-For: 2001:DB8:0:0:0:0:0:7\r\n", v6) == "2001:db8::7");
  CHECK(client_of("10.0.0.1", "X-Forwarded-For: 203.0.113.5, 2001:db8::9\r\n", v6) ==
        "2001:db8::9");
  CHECK(client_of("fd00::1", "X-Forwarded-For: 203.0.113.5\r\n", v6) == "203.0.113.5");
  CHECK(client_of("2001:db8::2", "X-Forwarded-For: 203.0.113.5\r\n", v6) == "2001:db8::2");
  // A dual-stack listener sees IPv4 peers as mapped addresses.
  CHECK(client_of("::ffff:10.0.0.1", "X-Forwarded-For: 198.51.100.4\r\n", v6) == "198.51.100.4");
}
