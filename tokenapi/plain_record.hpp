#pragma once
// Start-up's fast path: the stored records of tokens without a lifecycle, read without a JSON
// document and without the heap.

#include "store/token_store.hpp"
#include "tokenapi/ip.hpp"
#include "tokenapi/permissions.hpp"

#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

namespace tokengate::tokenapi {

/// What the authorizer keeps of a token without a rotation overlap or a rate limit. The id
/// and name are views into the store's record.
struct plain_token {
  std::string_view id;
  std::string_view name;
  store::digest value_digest{};
  permission_set permissions;
  std::uint32_t first_block = 0; ///< allowedCIDRBlocks: [first_block, first_block + blocks)
  std::uint32_t blocks = 0;      ///< of the list the reader was given
  std::optional<std::int64_t> expires_at; ///< unix seconds
  std::optional<std::int64_t> last_used;  ///< unix seconds
};

/// Reads `r` when its payload has exactly the shape `encode_payload` writes for a token without
/// a lifecycle, with nothing to unescape and ASCII text; its CIDR blocks are appended to
/// `blocks`. nullopt for anything else, valid or not: `decode_record` decides those. Whatever
/// this accepts, `decode_record` accepts with the same fields (a fuzz target checks it).
[[nodiscard]] std::optional<plain_token> read_plain_record(const store::token_record& r,
                                                           std::vector<cidr_block>& blocks);
/// The token would point into a record about to go.
std::optional<plain_token> read_plain_record(store::token_record&&,
                                             std::vector<cidr_block>&) = delete;
std::optional<plain_token> read_plain_record(const store::token_record&&,
                                             std::vector<cidr_block>&) = delete;

} // namespace tokengate::tokenapi
