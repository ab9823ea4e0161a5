#include "tokenapi/permissions.hpp"

#include "tests/support/catch_tokenapi.hpp"

#include <catch2/catch.hpp>

#include <set>
#include <string>
#include <vector>

using namespace tokengate::tokenapi;
using tokengate::test::set_of;

namespace {

// The enum of the OpenAPI file (APITokenAPI.APIToken.permissions), in its order.
const std::vector<std::string> openapi_names{
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

} // namespace

TEST_CASE("every permission of the OpenAPI enum round-trips through its name", "[permissions]") {
  REQUIRE(openapi_names.size() == permission_count);
  for (std::size_t i = 0; i < permission_count; ++i) {
    const auto p = static_cast<permission>(i);
    INFO("permission #" << i);
    CHECK(name_of(p) == openapi_names[i]);
    auto parsed = parse_permission(openapi_names[i]);
    REQUIRE(parsed.has_value());
    CHECK(*parsed == p);
  }
  CHECK(permission_set::all().size() == permission_count);
}

TEST_CASE("unknown and differently cased permission names are rejected", "[permissions]") {
  for (std::string name : {"", "alertread", "ALERTREAD", "alertRead", "AlertRead ", " AlertRead",
                           "Alert", "AlertReadX", "AlertRead\n", "OrganizationApiTokenModify",
                           "Admin", "AAA", "zzz", "ViewScheduledPromptsZ"}) {
    INFO("name: \"" << name << '"');
    CHECK_FALSE(parse_permission(name).has_value());
  }
  CHECK_FALSE(parse_permission(std::string_view("AlertRead\0", 10)).has_value());
}

TEST_CASE("permission sets answer membership, inclusion and difference", "[permissions]") {
  const auto reader = set_of({permission::AlertRead, permission::RuleRead});
  const auto writer =
      set_of({permission::AlertRead, permission::AlertModify, permission::RuleRead});

  CHECK(reader.contains(permission::AlertRead));
  CHECK_FALSE(reader.contains(permission::AlertModify));
  CHECK(reader.size() == 2);

  CHECK(writer.includes(reader));
  CHECK_FALSE(reader.includes(writer));
  CHECK(reader.includes(permission_set{}));
  CHECK(permission_set::all().includes(writer));
  CHECK(reader.includes(reader));

  CHECK(writer.minus(reader) == set_of({permission::AlertModify}));
  CHECK(reader.minus(writer).empty());
  CHECK(permission_set::all().minus(permission_set::all()).empty());
  CHECK(permission_set{}.empty());

  // Bits past the 39th are never members.
  CHECK(permission_set(~std::uint64_t{0}) == permission_set::all());
}

TEST_CASE("a joined permission set lists names in enum order", "[permissions]") {
  auto s = set_of({permission::ViewScheduledPrompts, permission::AIRunAsModify,
                   permission::OrganizationAPITokenRead});
  CHECK(s.join(",") == "AIRunAsModify,OrganizationAPITokenRead,ViewScheduledPrompts");
  CHECK(s.join(", ") == "AIRunAsModify, OrganizationAPITokenRead, ViewScheduledPrompts");
  CHECK(permission_set{}.join(",").empty());
  CHECK(set_of({permission::UserRead}).join(",") == "UserRead");

  std::string all = permission_set::all().join(",");
  std::string expected;
  for (const auto& n : openapi_names)
    expected += (expected.empty() ? "" : ",") + n;
  CHECK(all == expected);
}
