#pragma once

// The JSON of the key-lifecycle extensions (README "Key lifecycle"), none of it Panther's: a
// token's rateLimit, rotate's body, and the hex form in which the store payload keeps the
// replaced value's digest.

#include "tokenapi/api_error.hpp"
#include "tokenapi/token.hpp"

#include <boost/json/fwd.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace tokengate::tokenapi {

/// `rateLimit`: `null` (no limit) or `{"requests": 1 to 1000000000, "perSeconds": 1 to 86400}`,
/// both required, nothing else. Errors are 400s naming the field.
[[nodiscard]] api_result<std::optional<rate_limit>> parse_rate_limit(const boost::json::value& v);

/// `{"requests": N, "perSeconds": S}`
[[nodiscard]] boost::json::object rate_limit_json(const rate_limit& l);

/// Parses the optional body of rotate: empty, or `{"previousValueValidFor": <seconds, 0 to
/// 604800>}`. The overlap in seconds (0: none). Errors are 400s naming the field.
[[nodiscard]] api_result<std::int64_t> parse_rotate_body(std::string_view body);

/// A digest as 64 lower-case hex digits, and back (nullopt for anything else).
[[nodiscard]] std::string hex_of(const store::digest& d);
[[nodiscard]] std::optional<store::digest> digest_of_hex(std::string_view text);

} // namespace tokengate::tokenapi
