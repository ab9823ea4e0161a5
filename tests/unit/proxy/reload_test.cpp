// Live reload's pure parts (README "Live reload"): which settings a new configuration changes,
// which need a restart, and the answer's body.
#include "proxy/reload.hpp"

#include <catch2/catch.hpp>

using namespace tokengate;
using proxy::compare_configs;
using proxy::config;

TEST_CASE("equal configurations change nothing", "[reload]") {
  const auto r = compare_configs(config{}, config{});
  CHECK(r.applied);
  CHECK(r.changed.empty());
  CHECK(r.restart_required.empty());
  CHECK(r.to_json() == R"({"result":"applied","changed":[],"restartRequired":[]})");
}

TEST_CASE("live settings are named as changed, the others as needing a restart", "[reload]") {
  config next;
  next.routes = {proxy::route{"/admin", {"GET"}, false, {}}};
  next.default_route = std::nullopt;
  next.trusted_proxies = {*tokenapi::cidr_block::parse("10.0.0.0/8")};
  next.limits.idle_timeout = std::chrono::milliseconds(5);
  next.level = proxy::log_level::debug;
  next.listen = {"0.0.0.0", 8080};
  next.admin_listen = {"0.0.0.0", 9901};
  next.upstream = {"10.0.0.2", 80};
  next.data_dir = "/var/lib/tokengate";
  next.bootstrap_token_file = "/run/secrets/admin";
  next.audit_log_file = "/var/log/audit";
  next.threads = 4;
  next.database_url = "postgresql://db/tokens";
  next.database_password_file = "/run/secrets/db";
  next.max_staleness = std::chrono::milliseconds(5000);
  next.expiry_warning = std::chrono::seconds(60);
  const auto r = compare_configs(config{}, next);
  CHECK(r.changed == std::vector<std::string>{"routes", "default_route", "trusted_proxies",
                                              "limits", "log_level", "expiry_warning"});
  CHECK(r.restart_required ==
        std::vector<std::string>{"listen", "admin_listen", "upstream", "data_dir",
                                 "bootstrap_token_file", "audit_log_file", "threads",
                                 "database_url", "database_password_file", "max_staleness_ms"});
}

TEST_CASE("after a reload the live settings are the new ones and the rest as started", "[reload]") {
  config running;
  running.threads = 3;
  config next;
  next.threads = 8;
  next.routes = {proxy::route{"/a", {}, true, {}}};
  next.limits.max_connections = 10;
  const auto now = proxy::with_live_settings(running, next);
  CHECK(now.threads == 3);
  CHECK(now.routes == next.routes);
  CHECK(now.limits.max_connections == 10);
  // A second identical reload changes nothing, and still names the restart-only difference.
  const auto again = compare_configs(now, next);
  CHECK(again.changed.empty());
  CHECK(again.restart_required == std::vector<std::string>{"threads"});
}

TEST_CASE("a failed reload's body names the problem, escaped as JSON", "[reload]") {
  proxy::reload_report r;
  r.error = "config file a\"b.json: line 3";
  CHECK(r.to_json() == R"({"result":"failed","message":"config file a\"b.json: line 3"})");
}
