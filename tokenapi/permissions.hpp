#pragma once

#include <array>
#include <bit>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace tokengate::tokenapi {

/// The 39 permissions of Panther's API, in the order of its OpenAPI enum.
enum class permission : std::uint8_t {
  AIRunAsModify,
  AlertModify,
  AlertRead,
  BulkUpload,
  BulkUploadValidate,
  CloudsecSourceModify,
  CloudsecSourceRead,
  DataAnalyticsModify,
  DataAnalyticsRead,
  DestinationModify,
  DestinationRead,
  GeneralSettingsModify,
  GeneralSettingsRead,
  LogSourceModify,
  LogSourceRawDataRead,
  LogSourceRead,
  LookupModify,
  LookupRead,
  ManageAIResponses,
  ManageAISkills,
  ManageScheduledPrompts,
  McpServerModify,
  McpServerRead,
  NotificationsSend,
  OrganizationAPITokenModify,
  OrganizationAPITokenRead,
  PolicyModify,
  PolicyRead,
  ResourceModify,
  ResourceRead,
  RuleModify,
  RuleRead,
  RunPantherAI,
  SummaryRead,
  UserModify,
  UserRead,
  ViewAIPrivateResponses,
  ViewAISkills,
  ViewScheduledPrompts,
};

inline constexpr std::size_t permission_count = 39;

/// The permission's name as the API spells it.
[[nodiscard]] std::string_view name_of(permission p) noexcept;

/// The permission with this exact (case-sensitive) name, or nullopt.
[[nodiscard]] std::optional<permission> parse_permission(std::string_view name) noexcept;

/// A set of permissions as a bitset: membership and inclusion are one instruction each.
class permission_set {
public:
  constexpr permission_set() = default;
  constexpr explicit permission_set(std::uint64_t bits) : bits_(bits & mask) {}

  [[nodiscard]] static constexpr permission_set all() { return permission_set(mask); }

  constexpr void insert(permission p) { bits_ |= bit(p); }
  [[nodiscard]] constexpr bool contains(permission p) const { return (bits_ & bit(p)) != 0; }
  /// True when every permission of `other` is in this set.
  [[nodiscard]] constexpr bool includes(permission_set other) const {
    return (other.bits_ & ~bits_) == 0;
  }
  /// The permissions of this set that `other` lacks.
  [[nodiscard]] constexpr permission_set minus(permission_set other) const {
    return permission_set(bits_ & ~other.bits_);
  }
  [[nodiscard]] constexpr bool empty() const { return bits_ == 0; }
  [[nodiscard]] constexpr std::size_t size() const {
    return static_cast<std::size_t>(std::popcount(bits_));
  }
  [[nodiscard]] constexpr std::uint64_t bits() const { return bits_; }
  constexpr bool operator==(const permission_set&) const = default;

  /// Calls `f(permission)` for each member, in enum order.
  template <class F> void for_each(F&& f) const {
    for (auto b = bits_; b != 0; b &= b - 1)
      f(static_cast<permission>(std::countr_zero(b)));
  }

  /// The names joined with `separator`, in enum order (e.g. for X-Token-Permissions).
  [[nodiscard]] std::string join(std::string_view separator) const;

private:
  static constexpr std::uint64_t mask = (std::uint64_t{1} << permission_count) - 1;
  static constexpr std::uint64_t bit(permission p) {
    return std::uint64_t{1} << static_cast<unsigned>(p);
  }
  std::uint64_t bits_ = 0;
};

} // namespace tokengate::tokenapi
