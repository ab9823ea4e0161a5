// Start-up's reading of stored records. Properties: the full decoder (decode_record) never
// crashes on a payload; whatever the fast path (read_plain_record) accepts, the full decoder
// accepts too, as a token without a lifecycle with the same name, permissions, CIDR blocks and
// expiry; a refused record leaves the block list as it was.
#include "tests/fuzz/fuzz_check.hpp"
#include "tokenapi/plain_record.hpp"
#include "tokenapi/token_payload.hpp"

#include <algorithm>

using namespace tokengate::tokenapi;
using tokengate::fuzz::check;

extern "C" int LLVMFuzzerTestOneInput(const unsigned char* data, std::size_t size) {
  tokengate::store::token_record r;
  r.id = "7d3c3a5e-0000-4000-8000-000000000001";
  r.value_digest.fill(7);
  r.payload = tokengate::fuzz::as_text(data, size);
  const auto whole = decode_record(r);
  std::vector<cidr_block> blocks(1); // one block before: read_plain_record appends after it
  const auto plain = read_plain_record(r, blocks);
  if (!plain) {
    check(blocks.size() == 1, "a refused record adds no block");
    return 0;
  }
  check(whole.has_value(), "what the fast path reads, the full decoder reads");
  check(!whole->previous_digest && !whole->rate_limit, "the fast path reads no lifecycle");
  check(plain->id == whole->id && plain->value_digest == whole->value_digest, "same id");
  check(plain->name == whole->name, "same name");
  check(plain->permissions == whole->permissions, "same permissions");
  check(plain->first_block == 1 && plain->blocks + 1 == blocks.size(), "blocks appended");
  check(std::equal(blocks.begin() + 1, blocks.end(), whole->allowed_cidr_blocks.begin(),
                   whole->allowed_cidr_blocks.end()),
        "same CIDR blocks");
  const auto expiry = whole->expires_at
                          ? std::optional(whole->expires_at->time_since_epoch().count())
                          : std::nullopt;
  check(plain->expires_at == expiry, "same expiry");
  return 0;
}
