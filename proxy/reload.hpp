#pragma once

// Live reload (README "Live reload"): what a new configuration may change in a running
// sidecar, and what it would take a restart to change.

#include "proxy/config.hpp"
#include "proxy/route_table.hpp"

#include <functional>
#include <string>
#include <vector>

namespace tokengate::proxy {

/// The settings a reload applies. Each request is served with the one in force when it
/// started; requests in flight finish with theirs.
struct live_settings {
  route_table routes;
  std::vector<tokenapi::cidr_block> trusted_proxies;
  proxy::limits limits;
  log_level level = log_level::info;
  std::chrono::seconds expiry_warning{};

  [[nodiscard]] static live_settings from(const config& c);
};

/// What a reload did: applied, with the settings it changed, or refused (nothing changed),
/// with the reason.
struct reload_report {
  bool applied = false;
  std::string error;                         ///< why nothing changed; empty when applied
  std::vector<std::string> changed;          ///< settings in force from now on
  std::vector<std::string> restart_required; ///< settings that differ but need a restart
  /// Why a TLS certificate pair failed to load again (the previous one is still served); empty
  /// when every pair loaded or none changed. The reload then counts as a failure.
  std::string certificate_error;

  /// The body of POST /reload's answer, e.g. {"result":"applied","changed":["routes"],
  /// "restartRequired":["listen"]} or {"result":"failed","message":"..."}.
  [[nodiscard]] std::string to_json() const;
};

/// Compares the configuration in force with a freshly loaded one: the report (applied) names
/// the live settings that differ in `changed` and every other differing setting in
/// `restart_required`. Setting names are the config file's keys.
[[nodiscard]] reload_report compare_configs(const config& running, const config& loaded);

/// Reads the configuration again the way `tokengate serve` read it at start-up (arguments,
/// environment, file). Throws config_error.
using config_source = std::function<config()>;

/// `running` with the live settings of `loaded`: what is in force after a reload.
[[nodiscard]] config with_live_settings(config running, const config& loaded);

} // namespace tokengate::proxy
