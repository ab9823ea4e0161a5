// The CIDR and address parsers. Properties: canonical text parses back to the same block; a
// block holds its own network address and nothing of the other family; nothing after a NUL is
// ever cut off; an address parses the same as its canonical text.
#include "tests/fuzz/fuzz_check.hpp"
#include "tokenapi/ip.hpp"

using namespace tokengate::tokenapi;
using tokengate::fuzz::check;

extern "C" int LLVMFuzzerTestOneInput(const unsigned char* data, std::size_t size) {
  const auto text = tokengate::fuzz::as_text(data, size);
  const bool has_nul = text.find('\0') != std::string_view::npos;

  if (auto a = ip_address::parse(text)) {
    check(!has_nul, "no address from text with a NUL");
    auto again = ip_address::parse(a->to_string());
    check(again && *again == *a, "an address parses back from its canonical text");
  }
  auto block = cidr_block::parse(text);
  if (!block)
    return 0;
  check(!has_nul, "no block from text with a NUL");
  const auto& network = block->network();
  check(block->prefix_length() <= (network.is_v4() ? 32u : 128u), "prefix within the family");
  check(block->contains(network), "a block holds its network address");
  const auto canonical = block->to_string();
  auto again = cidr_block::parse(canonical);
  check(again && *again == *block, "canonical text parses back to the same block");
  check(again->to_string() == canonical, "canonical text is a fixed point");

  const auto other_family =
      network.is_v4() ? *ip_address::parse("2001:db8::1") : *ip_address::parse("192.0.2.1");
  check(!block->contains(other_family), "a block holds one family only");
  // An address part that is an IPv4 address in IPv6 form makes an IPv4 block.
  const auto address = ip_address::parse(text.substr(0, text.find('/')));
  check(address && address->is_v4() == network.is_v4(),
        "a block is of its address's family (a mapped address makes an IPv4 block)");
  return 0;
}
