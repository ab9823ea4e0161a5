#include "tokenapi/permissions.hpp"

#include <algorithm>

namespace tokengate::tokenapi {
namespace {

constexpr std::array<std::string_view, permission_count> names{
    "AIRunAsModify",
    "AlertModify",
    "AlertRead",
    "BulkUpload",
    "BulkUploadValidate",
    "CloudsecSourceModify",
    "CloudsecSourceRead",
    "DataAnalyticsModify",
    "DataAnalyticsRead",
    "DestinationModify",
    "DestinationRead",
    "GeneralSettingsModify",
    "GeneralSettingsRead",
    "LogSourceModify",
    "LogSourceRawDataRead",
    "LogSourceRead",
    "LookupModify",
    "LookupRead",
    "ManageAIResponses",
    "ManageAISkills",
    "ManageScheduledPrompts",
    "McpServerModify",
    "McpServerRead",
    "NotificationsSend",
    "OrganizationAPITokenModify",
    "OrganizationAPITokenRead",
    "PolicyModify",
    "PolicyRead",
    "ResourceModify",
    "ResourceRead",
    "RuleModify",
    "RuleRead",
    "RunPantherAI",
    "SummaryRead",
    "UserModify",
    "UserRead",
    "ViewAIPrivateResponses",
    "ViewAISkills",
    "ViewScheduledPrompts",
};

// The OpenAPI enum is sorted, so lookup is a binary search.
static_assert(std::is_sorted(names.begin(), names.end()));

} // namespace

std::string_view name_of(permission p) noexcept { return names[static_cast<std::size_t>(p)]; }

std::optional<permission> parse_permission(std::string_view name) noexcept {
  auto it = std::lower_bound(names.begin(), names.end(), name);
  if (it == names.end() || *it != name)
    return std::nullopt;
  return static_cast<permission>(it - names.begin());
}

std::string permission_set::join(std::string_view separator) const {
  std::string out;
  for_each([&](permission p) {
    if (!out.empty())
      out.append(separator);
    out.append(name_of(p));
  });
  return out;
}

} // namespace tokengate::tokenapi
