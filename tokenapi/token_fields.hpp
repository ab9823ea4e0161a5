#pragma once
// The JSON form of a token's fields, shared by the API's JSON (tokenapi/token_json.cpp, where
// they are defined) and the store payload (tokenapi/token_payload.cpp). Not for other users.

#include "tokenapi/api_error.hpp"
#include "tokenapi/token.hpp"

#include <boost/json.hpp>

#include <optional>
#include <vector>

namespace tokengate::tokenapi::detail {

[[nodiscard]] boost::json::object actor_json(const actor& a);
[[nodiscard]] boost::json::array permission_names(permission_set set);
[[nodiscard]] boost::json::array cidr_texts(const std::vector<cidr_block>& blocks);
[[nodiscard]] boost::json::object rate_limit_json(const rate_limit& l);

/// Each a 400 naming the field and the bad value (quoted, shortened) when `v` is not valid.
[[nodiscard]] api_result<permission_set> parse_permissions(const boost::json::value& v);
[[nodiscard]] api_result<std::vector<cidr_block>> parse_cidrs(const boost::json::value& v);
/// nullopt for JSON null (no rate limit).
[[nodiscard]] api_result<std::optional<rate_limit>> parse_rate_limit(const boost::json::value& v);

} // namespace tokengate::tokenapi::detail
