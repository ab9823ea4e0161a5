// The /api-tokens body parsers (create and update; rotate). Properties: every input is a token
// spec or a 400 with a message that makes valid JSON; an accepted spec holds only what the README
// allows (a printable name of 1 to 256 bytes, canonical and distinct blocks, a future expiry, a
// rate limit within its ranges); a body with a repeated key is never accepted; rotate's body is
// an overlap of 0 to 604800 seconds or a 400.
#include "tests/fuzz/fuzz_check.hpp"
#include "tokenapi/token_json.hpp"

#include <boost/json.hpp>

#include <algorithm>

using namespace tokengate::tokenapi;
using tokengate::fuzz::check;
using namespace std::chrono_literals;

extern "C" int LLVMFuzzerTestOneInput(const unsigned char* data, std::size_t size) {
  const auto body = tokengate::fuzz::as_text(data, size);
  const timestamp now = std::chrono::sys_days{std::chrono::year{2026} / 11 / 28};
  if (const auto overlap = parse_rotate_body(body))
    check(*overlap >= 0 && *overlap <= max_overlap_seconds, "an overlap within 0 to 7 days");
  else
    check(overlap.error().status == 400, "a refused rotate body is a 400");
  const auto spec = parse_token_spec(body, now);
  if (!spec) {
    check(spec.error().status == 400, "a refused body is a 400");
    check(!spec.error().message.empty(), "a refusal names the problem");
    boost::system::error_code ec;
    auto parsed = boost::json::parse(error_body(spec.error().message), ec);
    check(!ec && parsed.is_object(), "the error body is valid JSON");
    return 0;
  }
  const auto& name = spec->name;
  check(!name.empty() && name.size() <= 256, "a name of 1 to 256 bytes");
  for (std::size_t i = 0; i < name.size(); ++i) {
    const auto c = static_cast<unsigned char>(name[i]);
    check(c >= 0x20 && c != 0x7f, "no C0 or DEL in a name");
    if (c == 0xc2 && i + 1 < name.size()) {
      const auto next = static_cast<unsigned char>(name[i + 1]);
      check(next < 0x80 || next > 0x9f, "no C1 in a name");
    }
  }
  const auto& blocks = spec->allowed_cidr_blocks;
  check(blocks.size() <= 256, "at most 256 blocks");
  for (std::size_t i = 0; i < blocks.size(); ++i) {
    auto again = cidr_block::parse(blocks[i].to_string());
    check(again && *again == blocks[i], "blocks are canonical");
    for (std::size_t j = i + 1; j < blocks.size(); ++j)
      check(!(blocks[i] == blocks[j]), "blocks are distinct");
  }
  if (spec->expires_at && *spec->expires_at)
    check(**spec->expires_at > now, "an expiry lies in the future");
  if (spec->rate_limit && *spec->rate_limit) {
    const auto& limit = **spec->rate_limit;
    check(limit.requests >= 1 && limit.requests <= rate_limit::max_requests, "requests in range");
    check(limit.per_seconds >= 1 && limit.per_seconds <= rate_limit::max_seconds,
          "perSeconds in range");
  }

  // The same body with its first key repeated must be refused.
  boost::system::error_code ec;
  auto doc = boost::json::parse(body, ec);
  if (!ec && doc.is_object() && !doc.as_object().empty()) {
    const auto& first = *doc.as_object().begin();
    std::string doubled = "{" + boost::json::serialize(boost::json::string(first.key())) + ":" +
                          boost::json::serialize(first.value()) + "," +
                          std::string(body.substr(body.find('{') + 1));
    check(!parse_token_spec(doubled, now), "a repeated key is never accepted");
  }
  return 0;
}
