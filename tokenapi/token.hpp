#pragma once

#include "store/token_store.hpp"
#include "tokenapi/ip.hpp"
#include "tokenapi/permissions.hpp"
#include "tokenapi/rfc3339.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
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

/// A per-token request budget (not in Panther's API): at most `requests` proxied requests in
/// each window of `per_seconds` seconds, counted by each sidecar on its own.
struct rate_limit {
  std::uint32_t requests = 0;    ///< 1 to max_requests
  std::uint32_t per_seconds = 0; ///< 1 to max_seconds
  static constexpr std::uint32_t max_requests = 1'000'000'000;
  static constexpr std::uint32_t max_seconds = 86'400;
  bool operator==(const rate_limit&) const = default;
};

/// The longest token name, in bytes.
inline constexpr std::size_t max_name_bytes = 256;
/// Whether `s` holds a C0, DEL or C1 control character (the API refuses them in names).
[[nodiscard]] bool has_control_character(std::string_view s) noexcept;
/// Whether a stored record's name can be sent upstream in a header: not empty, at most
/// max_name_bytes, no C0 control character (CR, LF, NUL) and no DEL, as the API has always
/// required. A record is held to it when read: a row written around the API (a fleet's
/// database is open to its operators) must not put a line break into an upstream request.
[[nodiscard]] bool sendable_name(std::string_view name) noexcept;
/// Whether a stored record's id can be sent upstream in a header (X-Token-Id) and in a path:
/// 1 to 128 letters, digits, '-', '_' or '.'. The API makes UUIDs; a row written around it is
/// held to this when read, as its name is.
[[nodiscard]] bool sendable_id(std::string_view id) noexcept;

/// The most allowedCIDRBlocks a token may list.
inline constexpr std::size_t max_cidr_blocks = 256;

/// The longest overlap a rotation grants the replaced value: 7 days.
inline constexpr std::int64_t max_overlap_seconds = 604'800;

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
  /// The value a rotation replaced, while it still works (not in Panther's API): its digest,
  /// until when it works, and when it was last used (noted in memory, per sidecar).
  std::optional<store::digest> previous_digest;
  std::optional<timestamp> previous_expires_at;
  std::optional<timestamp> previous_last_used_at;
  std::optional<tokenapi::rate_limit> rate_limit;

  /// Whether the replaced value still works at `now`.
  [[nodiscard]] bool overlapping(timestamp now) const {
    return previous_digest && previous_expires_at && *previous_expires_at > now;
  }
  [[nodiscard]] bool expired(timestamp now) const { return expires_at && *expires_at <= now; }
};

/// The body of create and update, validated.
struct token_spec {
  std::string name;
  permission_set permissions;
  std::vector<cidr_block> allowed_cidr_blocks;
  /// Absent: not given (update keeps the current one). Engaged but empty: never expires.
  std::optional<std::optional<timestamp>> expires_at;
  /// Absent: not given (update keeps the current one). Engaged but empty: no limit.
  std::optional<std::optional<tokenapi::rate_limit>> rate_limit;
};

} // namespace tokengate::tokenapi
