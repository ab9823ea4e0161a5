// The X-Forwarded-For walk (README "Trusted proxies"): behind a trusted proxy, the list is what
// the client sent with the proxies' entries appended. The input is a peer choice (its first
// byte) and X-Forwarded-For field values (the rest, one per line). Properties, against an oracle
// written differently (collect the whole list, then walk it): an untrusted peer is always the
// client; otherwise the client is the right-most entry that is not trusted, the last trusted
// hop when an entry is not an address, or the left-most entry when all are trusted.
#include "proxy/client_address.hpp"
#include "tests/fuzz/fuzz_check.hpp"

#include <string>
#include <vector>

using namespace tokengate;
using tokengate::fuzz::check;

namespace {

std::string_view without_ows(std::string_view s) {
  const auto from = s.find_first_not_of(" \t");
  if (from == std::string_view::npos)
    return {};
  return s.substr(from, s.find_last_not_of(" \t") - from + 1);
}

bool trusted_by(const std::vector<tokenapi::cidr_block>& blocks, const tokenapi::ip_address& a) {
  for (const auto& b : blocks)
    if (b.contains(a))
      return true;
  return false;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const unsigned char* data, std::size_t size) {
  if (size == 0)
    return 0;
  static const std::vector<tokenapi::cidr_block> trusted = {
      *tokenapi::cidr_block::parse("10.0.0.0/8"), *tokenapi::cidr_block::parse("fd00::/8"),
      *tokenapi::cidr_block::parse("192.0.2.7")};
  static const tokenapi::ip_address peers[] = {
      *tokenapi::ip_address::parse("10.0.0.1"), *tokenapi::ip_address::parse("fd00::1"),
      *tokenapi::ip_address::parse("::ffff:10.1.2.3"), *tokenapi::ip_address::parse("203.0.113.9")};
  const auto& peer = peers[data[0] % 4];
  const auto text = tokengate::fuzz::as_text(data + 1, size - 1);

  // The head, as the request parser would give it: one field per line, values without OWS.
  std::vector<std::string> values;
  for (std::size_t at = 0; at <= text.size();) {
    const auto end = std::min(text.find('\n', at), text.size());
    values.emplace_back(without_ows(text.substr(at, end - at)));
    at = end + 1;
  }
  proxy::http1::head h;
  h.method = "GET";
  h.target = "/";
  h.fields.push_back({"Host", "a"});
  for (std::size_t i = 0; i < values.size(); ++i)
    h.fields.push_back({i % 3 == 2 ? "x-forwarded-FOR" : "X-Forwarded-For", values[i]});
  const auto got = proxy::client_address(peer, h, trusted);

  // The oracle: every entry in order (a field with no value is one empty entry), then the walk.
  std::vector<std::string_view> entries;
  for (const auto& v : values) {
    for (std::size_t at = 0;;) {
      const auto comma = v.find(',', at);
      entries.push_back(without_ows(std::string_view(v).substr(at, comma - at)));
      if (comma == std::string::npos)
        break;
      at = comma + 1;
    }
  }
  auto expected = peer;
  if (trusted_by(trusted, peer)) {
    for (auto e = entries.rbegin(); e != entries.rend(); ++e) {
      const auto address = tokenapi::ip_address::parse(*e);
      if (!address)
        break;
      expected = *address;
      if (!trusted_by(trusted, expected))
        break;
    }
  }
  check(got == expected, "the client is the right-most untrusted entry behind trusted proxies");
  check(trusted_by(trusted, peer) || got == peer, "an untrusted peer is always the client");
  return 0;
}
