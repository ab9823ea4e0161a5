// load_config: the settings table, the precedence of flags, environment, file and defaults,
// and the checks across settings. The JSON documents are read in proxy/config_file.cpp; the
// messages, numbers and endpoints are in proxy/config_text.cpp.
#include "proxy/config.hpp"
#include "proxy/config_parse.hpp"
#include "proxy/config_tls.hpp"
#include "proxy/http1.hpp"

#include <algorithm>
#include <regex>
#include <sstream>

namespace tokengate::proxy {
namespace {
using namespace config_parse;

enum class kind { text, integer, document };

/// One setting of `tokengate serve`: its key in the file (and so its TOKENGATE_ variable), its
/// flag, the type its flag or variable text is read as, and how its value goes into the config.
/// Adding a setting is adding one entry to `settings` (and its field in proxy/config.hpp).
struct setting {
  std::string_view name; ///< key in the file
  std::string_view flag; ///< "" when there is no flag
  kind type;
  void (*apply)(config&, std::string_view name, const sourced&); ///< null: limits, merged apart
};

std::string non_empty_text(const sourced& v, std::string_view name) {
  auto text = as_text(v, name);
  if (text.empty())
    fail(name, v.source, "must not be empty");
  return text;
}

log_level as_log_level(const sourced& v, std::string_view name) {
  const auto level = as_text(v, name);
  if (level == "debug")
    return log_level::debug;
  if (level == "info")
    return log_level::info;
  if (level == "warn")
    return log_level::warn;
  if (level == "error")
    return log_level::error;
  fail(name, v.source, "must be one of debug, info, warn, error");
}

constexpr std::int64_t day_ms = 24LL * 3600 * 1000;
constexpr std::int64_t year_s = 366LL * 24 * 3600;

// In the order they are applied. The messages of database_url never quote the value: it may
// hold a password.
constexpr setting settings[] = {
    {"listen", "--listen", kind::text,
     [](config& c, std::string_view n, const sourced& v) { c.listen = as_listen(v, n); }},
    {"admin_listen", "--admin-listen", kind::text,
     [](config& c, std::string_view n, const sourced& v) { c.admin_listen = as_listen(v, n); }},
    {"upstream", "--upstream", kind::text,
     [](config& c, std::string_view, const sourced& v) {
       c.upstream = as_upstream(v);
       c.upstream_tls.enabled = v.value.get_string().starts_with("https://");
     }},
    {"data_dir", "--data-dir", kind::text,
     [](config& c, std::string_view n, const sourced& v) { c.data_dir = non_empty_text(v, n); }},
    {"bootstrap_token_file", "--bootstrap-token-file", kind::text,
     [](config& c, std::string_view n, const sourced& v) {
       c.bootstrap_token_file = non_empty_text(v, n);
     }},
    {"audit_log_file", "--audit-log-file", kind::text,
     [](config& c, std::string_view n, const sourced& v) { c.audit_log_file = as_text(v, n); }},
    {"threads", "--threads", kind::integer,
     [](config& c, std::string_view n, const sourced& v) {
       c.threads = static_cast<unsigned>(as_integer(v.value, n, v.source, 1, 256));
     }},
    {"log_level", "--log-level", kind::text,
     [](config& c, std::string_view n, const sourced& v) { c.level = as_log_level(v, n); }},
    {"trusted_proxies", "", kind::document, apply_trusted_proxies},
    {"routes", "", kind::document, apply_routes},
    {"default_route", "", kind::document, apply_default_route},
    {"limits", "", kind::document, nullptr},
    {"database_url", "--database-url", kind::text,
     [](config& c, std::string_view n, const sourced& v) {
       c.database_url = non_empty_text(v, n);
     }},
    {"database_password_file", "--database-password-file", kind::text,
     [](config& c, std::string_view n, const sourced& v) {
       c.database_password_file = non_empty_text(v, n);
     }},
    {"max_staleness_ms", "--max-staleness-ms", kind::integer,
     [](config& c, std::string_view n, const sourced& v) {
       c.max_staleness = std::chrono::milliseconds(as_integer(v.value, n, v.source, 2000, day_ms));
     }},
    {"expiry_warning", "--expiry-warning", kind::integer,
     [](config& c, std::string_view n, const sourced& v) {
       c.expiry_warning = std::chrono::seconds(as_integer(v.value, n, v.source, 0, year_s));
     }},
};

const setting* find_setting(std::string_view name) {
  auto it = std::find_if(std::begin(settings), std::end(settings),
                         [name](const setting& s) { return s.name == name; });
  return it == std::end(settings) ? nullptr : it;
}

// "10.0.0.0/8, 192.168.0.0/16": trusted_proxies as a plain comma-separated list.
json::array comma_list(std::string_view text) {
  json::array list;
  std::stringstream in{std::string(text)};
  for (std::string item; std::getline(in, item, ',');) {
    // A space after each comma is the usual way to write it.
    const auto first = item.find_first_not_of(" \t");
    if (first != std::string::npos)
      list.emplace_back(item.substr(first, item.find_last_not_of(" \t") - first + 1));
  }
  return list;
}

// Text from the environment or a flag, typed as the setting wants.
json::value typed(const setting& s, std::string_view text, const std::string& source) {
  switch (s.type) {
  case kind::text:
    return json::string(text);
  case kind::integer:
    if (auto v = parse_integer(text))
      return *v;
    fail(s.name, source, "must be an integer");
  case kind::document:
    if (s.name == "trusted_proxies" && !text.starts_with('['))
      return comma_list(text);
    return parse_json_text(text, source);
  }
  return nullptr;
}

bool is_flag(std::string_view name) {
  return name == "--config" || is_tls_flag(name) ||
         std::any_of(std::begin(settings), std::end(settings),
                     [&](const setting& s) { return !s.flag.empty() && s.flag == name; });
}

/// The flags by name, "--name=value" or "--name value"; throws on an unknown one.
std::map<std::string_view, std::string_view>
parse_flags(const std::vector<std::string_view>& args) {
  std::map<std::string_view, std::string_view> flags;
  for (std::size_t i = 0; i < args.size(); ++i) {
    auto arg = args[i];
    std::string_view value;
    const auto eq = arg.find('=');
    auto name = arg.substr(0, eq);
    if (!is_flag(name))
      throw unknown_option(name);
    if (eq != std::string_view::npos)
      value = arg.substr(eq + 1);
    else if (i + 1 < args.size())
      value = args[++i];
    else
      throw config_error("option " + std::string(name) + " needs a value");
    flags[name] = value;
  }
  return flags;
}

/// Each setting's winning value, and the "limits" objects in merge order.
struct layers {
  std::map<std::string_view, sourced> values;
  std::vector<sourced> limit_objects;
  json::object tls_blocks; ///< the file's tls, admin_tls and upstream_tls: merged apart
  std::string file_source;
};

void add_file(layers& out, const std::string& path, const file_reader& read) {
  const auto file = read_config_file(path, read);
  out.file_source = file.source;
  for (const auto& [key, value] : file.value.get_object()) {
    if (is_tls_block(key)) {
      out.tls_blocks[key] = value;
      continue;
    }
    const auto* s = find_setting(key);
    if (s == nullptr)
      throw config_error("configuration error: unknown key " + quoted(key) + " in " + file.source);
    out.values[s->name] = {value, file.source};
    if (s->name == "limits")
      out.limit_objects.push_back(out.values[s->name]);
  }
}

void add_environment_and_flags(layers& out, const env_lookup& env,
                               const std::map<std::string_view, std::string_view>& flags) {
  for (const auto& s : settings)
    if (auto text = env(env_name(s.name))) {
      out.values[s.name] = {typed(s, *text, env_name(s.name)), env_name(s.name)};
      if (s.name == "limits")
        out.limit_objects.push_back(out.values[s.name]);
    }
  for (const auto& s : settings)
    if (auto f = flags.find(s.flag); !s.flag.empty() && f != flags.end())
      out.values[s.name] = {typed(s, f->second, std::string(s.flag)), std::string(s.flag)};
}

config build(const layers& in, const limit_layers& limit_values) {
  config c;
  bool bootstrap_set = false;
  for (const auto& s : settings) {
    if (auto l = in.values.find(s.name); l != in.values.end() && s.apply != nullptr) {
      s.apply(c, s.name, l->second);
      bootstrap_set = bootstrap_set || s.name == "bootstrap_token_file";
    }
  }
  if (!bootstrap_set)
    c.bootstrap_token_file = c.data_dir / "admin-token";
  apply_limits(c.limits, limit_values);
  if (c.database_url.empty() && (!c.database_password_file.empty() || c.max_staleness))
    throw config_error("configuration error: database_password_file and max_staleness_ms need "
                       "database_url");
  if (c.listen == c.admin_listen && c.listen.port != 0)
    throw config_error("configuration error: listen and admin_listen must differ");
  return c;
}

} // namespace

config_error unknown_option(std::string_view name) {
  if (!name.starts_with("--"))
    return config_error("an argument that is not an --option (not shown: it may hold a secret; "
                        "see tokengate --help)");
  return config_error("unknown option '" + std::string(name) + "' (see tokengate --help)");
}

namespace {

// A variable Kubernetes makes for a Service of the namespace ("service links"): for one named
// tokengate-admin, TOKENGATE_ADMIN_SERVICE_HOST, TOKENGATE_ADMIN_SERVICE_PORT[_<NAME>],
// TOKENGATE_ADMIN_PORT, and TOKENGATE_ADMIN_PORT_9901_TCP[_PROTO|_PORT|_ADDR].
bool service_link(const std::string& name) {
  static const std::regex link(
      "[A-Z0-9_]+_(SERVICE_HOST|SERVICE_PORT(_[A-Z0-9_]+)?|PORT(_[0-9]+_(TCP|UDP|SCTP)(_(PROTO|"
      "PORT|ADDR))?)?)");
  return std::regex_match(name, link);
}

} // namespace

std::vector<std::string> unread_variables(std::span<const std::string> names,
                                          const std::set<std::string>& read) {
  constexpr std::string_view prefix = "TOKENGATE_";
  std::set<std::string> unread;
  for (const auto& name : names) {
    if (!http1::iequals(std::string_view(name).substr(0, prefix.size()), prefix) ||
        read.contains(name) || name == "TOKENGATE_CONFIG" || service_link(name))
      continue;
    unread.insert(name);
  }
  return {unread.begin(), unread.end()};
}

config load_config(const std::vector<std::string_view>& args, const env_lookup& lookup,
                   const file_reader& read) {
  // A variable set to the empty string counts as unset, as orchestrators often leave them.
  const env_lookup env = [&](const std::string& name) {
    auto v = lookup(name);
    return v && !v->empty() ? v : std::nullopt;
  };
  // Flags first, only to find --config; they are applied last.
  const auto flags = parse_flags(args);
  layers in;
  if (auto f = flags.find("--config"); f != flags.end())
    add_file(in, std::string(f->second), read);
  else if (auto file = env("TOKENGATE_CONFIG"))
    add_file(in, *file, read);
  add_environment_and_flags(in, env, flags);
  // limits merge key by key: the file's, then TOKENGATE_LIMITS, then TOKENGATE_<LIMIT>.
  const auto limit_values = collect_limits(in.limit_objects, env);
  auto c = build(in, limit_values);
  // After build: an https:// upstream is known by now.
  apply_tls_settings(c, &in.tls_blocks, in.file_source, env, flags);
  return c;
}

} // namespace tokengate::proxy
