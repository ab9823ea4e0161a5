#pragma once

#include "store/token_store.hpp"
#include "tokenapi/token.hpp"

#include <optional>
#include <string>

namespace tokengate::tokenapi {

/// The store payload of a token: every field but id, digest and last use, as JSON.
[[nodiscard]] std::string encode_payload(const token& t);

/// Rebuilds a token from a store record; nullopt when the payload is not one we wrote.
[[nodiscard]] std::optional<token> decode_record(const store::token_record& r);

} // namespace tokengate::tokenapi
