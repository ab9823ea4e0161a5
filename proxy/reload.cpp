#include "proxy/reload.hpp"

#include "proxy/log.hpp"

namespace tokengate::proxy {

live_settings live_settings::from(const config& c) {
  return {route_table(c.routes, c.default_route), c.trusted_proxies, c.limits, c.level,
          c.expiry_warning};
}

std::string reload_report::to_json() const {
  if (!applied) {
    std::string out = R"({"result":"failed","message":")";
    append_json_escaped(out, error);
    return out + "\"}";
  }
  const auto list = [](std::string& out, const std::vector<std::string>& names) {
    out += '[';
    for (std::size_t i = 0; i < names.size(); ++i) {
      out += i ? ",\"" : "\"";
      append_json_escaped(out, names[i]);
      out += '"';
    }
    out += ']';
  };
  std::string out = R"({"result":"applied","changed":)";
  list(out, changed);
  out += R"(,"restartRequired":)";
  list(out, restart_required);
  if (!certificate_error.empty()) {
    out += R"(,"certificates":"failed","certificateError":")";
    append_json_escaped(out, certificate_error);
    out += '"';
  }
  return out + "}";
}

reload_report compare_configs(const config& running, const config& loaded) {
  reload_report r;
  r.applied = true;
  const auto note = [](std::vector<std::string>& to, bool differs, const char* name) {
    if (differs)
      to.emplace_back(name);
  };
  auto& live = r.changed;
  note(live, running.routes != loaded.routes, "routes");
  note(live, running.default_route != loaded.default_route, "default_route");
  note(live, running.trusted_proxies != loaded.trusted_proxies, "trusted_proxies");
  note(live, running.limits != loaded.limits, "limits");
  note(live, running.level != loaded.level, "log_level");
  note(live, running.expiry_warning != loaded.expiry_warning, "expiry_warning");

  auto& restart = r.restart_required;
  note(restart, running.listen != loaded.listen, "listen");
  note(restart, running.admin_listen != loaded.admin_listen, "admin_listen");
  note(restart, running.upstream != loaded.upstream, "upstream");
  note(restart, running.data_dir != loaded.data_dir, "data_dir");
  note(restart, running.bootstrap_token_file != loaded.bootstrap_token_file,
       "bootstrap_token_file");
  note(restart, running.audit_log_file != loaded.audit_log_file, "audit_log_file");
  note(restart, running.threads != loaded.threads, "threads");
  note(restart, running.database_url != loaded.database_url, "database_url");
  note(restart, running.database_password_file != loaded.database_password_file,
       "database_password_file");
  note(restart, running.max_staleness != loaded.max_staleness, "max_staleness_ms");
  // The certificate files themselves are read again on every reload; their names are not.
  note(restart, running.tls != loaded.tls, "tls");
  note(restart, running.admin_tls != loaded.admin_tls, "admin_tls");
  note(restart, running.upstream_tls != loaded.upstream_tls, "upstream_tls");
  return r;
}

config with_live_settings(config running, const config& loaded) {
  running.routes = loaded.routes;
  running.default_route = loaded.default_route;
  running.trusted_proxies = loaded.trusted_proxies;
  running.limits = loaded.limits;
  running.level = loaded.level;
  running.expiry_warning = loaded.expiry_warning;
  return running;
}

} // namespace tokengate::proxy
