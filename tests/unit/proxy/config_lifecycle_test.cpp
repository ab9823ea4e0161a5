// The key-lifecycle settings (README "Key lifecycle"): expiry_warning like every other setting
// (flag, variable, file, default), and a route's "enforce".
#include "proxy/config.hpp"

#include "tests/unit/proxy/config_checks.hpp"

#include <catch2/catch.hpp>

using namespace tokengate;
using namespace tokengate::proxy;
using namespace tokengate::proxy::testing;
using namespace std::chrono_literals;
using Catch::Matchers::Contains;

TEST_CASE("expiry_warning: 7 days by default, from a flag, a variable or the file",
          "[config][lifecycle]") {
  CHECK(load({}).expiry_warning == 604800s);
  config_file f(R"({"expiry_warning": 3600})");
  CHECK(load({"--config", f.path}).expiry_warning == 3600s);
  CHECK(load({"--config", f.path}, {{"TOKENGATE_EXPIRY_WARNING", "60"}}).expiry_warning == 60s);
  CHECK(load({"--config", f.path, "--expiry-warning", "0"}, {{"TOKENGATE_EXPIRY_WARNING", "60"}})
            .expiry_warning == 0s);
  CHECK_THAT(error_of({"--expiry-warning", "-1"}),
             Contains("expiry_warning") && Contains("(from --expiry-warning)"));
  CHECK_THAT(error_of({}, {{"TOKENGATE_EXPIRY_WARNING", "a week"}}),
             Contains("expiry_warning") && Contains("(from TOKENGATE_EXPIRY_WARNING)"));
  // At most 31622400 s (366 days).
  CHECK(load({"--expiry-warning", "31622400"}).expiry_warning == 31622400s);
  CHECK_THAT(error_of({"--expiry-warning", "31622401"}), Contains("expiry_warning"));
}

TEST_CASE("a route may be report-only with \"enforce\": false", "[config][routes][lifecycle]") {
  config_file f(R"({"routes": [
      {"prefix": "/alerts", "permissions": ["AlertModify"], "enforce": false},
      {"prefix": "/rules", "enforce": true}],
    "default_route": {"enforce": false}})");
  const auto c = load({"--config", f.path});
  REQUIRE(c.routes.size() == 2);
  CHECK_FALSE(c.routes[0].enforce);
  CHECK(c.routes[1].enforce);
  REQUIRE(c.default_route);
  CHECK_FALSE(c.default_route->enforce);
  CHECK(load({}, {{"TOKENGATE_ROUTES", R"([{"prefix": "/x"}])"}}).routes[0].enforce);

  CHECK_THAT(error_of({}, {{"TOKENGATE_ROUTES", R"([{"prefix": "/x", "enforce": "no"}])"}}),
             Contains("routes[0].enforce") && Contains("true or false"));
  CHECK_THAT(error_of({}, {{"TOKENGATE_ROUTES",
                            R"([{"prefix": "/x", "auth": "none", "enforce": false}])"}}),
             Contains("routes[0]") && Contains("report only"));
}
