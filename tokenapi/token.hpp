#pragma once

#include "store/token_store.hpp"
#include "tokenapi/ip.hpp"
#include "tokenapi/permissions.hpp"
#include "tokenapi/rfc3339.hpp"

#include <optional>
#include <string>
#include <vector>

namespace tokengate::tokenapi {

/// Who created or last changed a token: another API token, or tokengate itself (bootstrap).
struct actor {
  enum class kind { api_token, system };
  std::string id;
  kind type = kind::system;

  [[nodiscard]] static actor system() { return {"system", kind::system}; }
  [[nodiscard]] static actor token(std::string id) { return {std::move(id), kind::api_token}; }
  bool operator==(const actor&) const = default;
};

/// An API token, as the API shows it (less its value, which is never kept).
struct token {
  std::string id;
  std::string name;
  permission_set permissions;
  std::vector<cidr_block> allowed_cidr_blocks; ///< empty: every address
  timestamp created_at;
  actor created_by;
  timestamp updated_at;
  actor updated_by;
  std::optional<timestamp> expires_at;
  std::optional<timestamp> rotated_at;
  std::optional<timestamp> last_used_at;
  store::digest value_digest{};

  [[nodiscard]] bool expired(timestamp now) const { return expires_at && *expires_at <= now; }
};

/// The body of create and update, validated.
struct token_spec {
  std::string name;
  permission_set permissions;
  std::vector<cidr_block> allowed_cidr_blocks;
  /// Absent: not given (update keeps the current one). Engaged but empty: never expires.
  std::optional<std::optional<timestamp>> expires_at;
};

} // namespace tokengate::tokenapi
