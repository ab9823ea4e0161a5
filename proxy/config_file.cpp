// The config loader's JSON documents: the config file itself, the routes, the default route,
// the trusted proxies and the limits (README "Configuration").
#include "proxy/config_parse.hpp"

#include "proxy/path.hpp"
#include "tokenapi/json_parse.hpp"

#include <algorithm>
#include <chrono>

namespace tokengate::proxy::config_parse {
namespace {

constexpr std::int64_t day_ms = 24LL * 3600 * 1000;

/// One key of "limits": its range and where it goes. Adding a limit is adding one entry here
/// (and its field in proxy/config.hpp).
struct limit_setting {
  std::string_view name;
  std::int64_t min;
  std::int64_t max;
  void (*set)(limits&, std::int64_t);
};

std::chrono::milliseconds ms(std::int64_t n) { return std::chrono::milliseconds(n); }
std::size_t size(std::int64_t n) { return static_cast<std::size_t>(n); }

constexpr limit_setting limit_settings[] = {
    {"max_header_bytes", 1024, 1 << 20,
     [](limits& l, std::int64_t n) { l.max_header_bytes = size(n); }},
    {"max_admin_body_bytes", 1, 16 << 20,
     [](limits& l, std::int64_t n) { l.max_admin_body_bytes = size(n); }},
    {"header_timeout_ms", 1, day_ms, [](limits& l, std::int64_t n) { l.header_timeout = ms(n); }},
    {"idle_timeout_ms", 1, day_ms, [](limits& l, std::int64_t n) { l.idle_timeout = ms(n); }},
    {"upstream_connect_timeout_ms", 1, day_ms,
     [](limits& l, std::int64_t n) { l.upstream_connect_timeout = ms(n); }},
    {"upstream_timeout_ms", 1, day_ms,
     [](limits& l, std::int64_t n) { l.upstream_timeout = ms(n); }},
    {"upstream_idle_timeout_ms", 1, day_ms,
     [](limits& l, std::int64_t n) { l.upstream_idle_timeout = ms(n); }},
    {"max_connections", 1, 1'000'000,
     [](limits& l, std::int64_t n) { l.max_connections = size(n); }},
    {"max_tls_handshakes", 1, 1'000'000,
     [](limits& l, std::int64_t n) { l.max_tls_handshakes = size(n); }},
    {"shutdown_timeout_ms", 1, day_ms,
     [](limits& l, std::int64_t n) { l.shutdown_timeout = ms(n); }},
};

const limit_setting* find_limit(std::string_view key) {
  auto it = std::find_if(std::begin(limit_settings), std::end(limit_settings),
                         [key](const limit_setting& l) { return l.name == key; });
  return it == std::end(limit_settings) ? nullptr : it;
}

tokenapi::permission_set as_permissions(const json::value& v, std::string_view name,
                                        const std::string& source) {
  if (!v.is_array())
    fail(name, source, "must be an array of permission names");
  tokenapi::permission_set set;
  for (const auto& item : v.get_array()) {
    if (!item.is_string())
      fail(name, source, "must be an array of permission names");
    auto p = tokenapi::parse_permission(item.get_string());
    if (!p)
      fail(name, source, "names an unknown permission \"" + std::string(item.get_string()) + "\"");
    set.insert(*p);
  }
  return set;
}

std::string as_prefix(const json::value& item, const std::string& field,
                      const std::string& source) {
  if (!item.is_string() || !item.get_string().starts_with("/"))
    fail(field, source, "must be a path starting with '/'");
  normalized_target normal;
  if (!normalize_target(item.get_string(), normal) || normal.has_query)
    fail(field, source, "must be a plain path such as /alerts");
  auto prefix = normal.path;
  if (prefix.size() > 1 && prefix.ends_with('/'))
    prefix.pop_back();
  return prefix;
}

std::vector<std::string> as_methods(const json::value& item, const std::string& field,
                                    const std::string& source) {
  if (!item.is_array() || item.get_array().empty())
    fail(field, source, "must be a non-empty array of HTTP methods");
  std::vector<std::string> methods;
  for (const auto& m : item.get_array()) {
    if (!m.is_string() || m.get_string().empty() ||
        !std::all_of(m.get_string().begin(), m.get_string().end(),
                     [](char c) { return (c >= 'A' && c <= 'Z') || c == '-' || c == '_'; }))
      fail(field, source, "must hold upper-case HTTP methods such as \"GET\"");
    methods.emplace_back(m.get_string());
  }
  return methods;
}

// A route object; `where` is e.g. "routes[2]" or "default_route".
route as_route(const json::value& v, const std::string& where, const std::string& source,
               bool is_default) {
  if (!v.is_object())
    fail(where, source, "must be an object");
  route r;
  r.prefix = "/";
  bool has_prefix = false;
  bool has_permissions = false;
  for (const auto& [key, item] : v.get_object()) {
    const auto field = where + "." + std::string(key);
    if (key == "prefix" && !is_default) {
      r.prefix = as_prefix(item, field, source);
      has_prefix = true;
    } else if (key == "methods" && !is_default) {
      r.methods = as_methods(item, field, source);
    } else if (key == "permissions") {
      r.permissions = as_permissions(item, field, source);
      has_permissions = true;
    } else if (key == "enforce") {
      if (!item.is_bool())
        fail(field, source, "must be true or false (false: report only)");
      r.enforce = item.get_bool();
    } else if (key == "auth") {
      if (!item.is_string() || item.get_string() != "none")
        fail(field, source, "must be \"none\" (or be left out to require a key)");
      r.open = true;
    } else {
      fail(where, source, "has an unknown key " + quoted(key));
    }
  }
  if (!is_default && !has_prefix)
    fail(where, source, "needs a \"prefix\"");
  if (r.open && has_permissions)
    fail(where, source, "cannot both be \"auth\": \"none\" and require permissions");
  if (r.open && !r.enforce)
    fail(where, source, "cannot both be \"auth\": \"none\" and report only (\"enforce\": false)");
  return r;
}

} // namespace

json::value parse_json_text(std::string_view text, const std::string& source) {
  boost::system::error_code ec;
  json::stream_parser parser;
  const auto used = parser.write(text.data(), text.size(), ec);
  if (!ec)
    parser.finish(ec);
  if (ec) {
    const auto upto = text.substr(0, std::min(used, text.size()));
    const auto line = 1 + std::count(upto.begin(), upto.end(), '\n');
    throw config_error("configuration error: " + source + " is not valid JSON (line " +
                       std::to_string(line) + ": " + ec.message() + ")");
  }
  // A repeated key is a typo or an attempt to say two things at once: never "last one wins".
  if (auto strict = tokenapi::parse_json(text, source); !strict)
    throw config_error("configuration error: " + strict.error().message);
  return parser.release();
}

sourced read_config_file(const std::string& path, const file_reader& read) {
  const auto file = read(path);
  if (!file.text)
    throw config_error("configuration error: cannot read config file " + path + ": " + file.error);
  const auto source = "config file " + path;
  auto doc = parse_json_text(*file.text, source);
  if (!doc.is_object())
    throw config_error("configuration error: " + source + " must hold a JSON object");
  return {std::move(doc), source};
}

void apply_trusted_proxies(config& c, std::string_view name, const sourced& v) {
  if (!v.value.is_array())
    fail(name, v.source, "must be an array of CIDR blocks");
  for (const auto& item : v.value.get_array()) {
    auto block = item.is_string() ? tokenapi::cidr_block::parse(item.get_string())
                                  : std::optional<tokenapi::cidr_block>{};
    if (!block)
      fail(name, v.source, "holds an invalid CIDR block " + json::serialize(item));
    c.trusted_proxies.push_back(*block);
  }
}

void apply_routes(config& c, std::string_view name, const sourced& v) {
  if (!v.value.is_array())
    fail(name, v.source, "must be an array of route objects");
  std::size_t i = 0;
  for (const auto& item : v.value.get_array())
    c.routes.push_back(as_route(item, "routes[" + std::to_string(i++) + "]", v.source, false));
}

void apply_default_route(config& c, std::string_view name, const sourced& v) {
  c.default_route =
      v.value.is_null()
          ? std::nullopt
          : std::optional<route>(as_route(v.value, std::string(name), v.source, true));
}

limit_layers collect_limits(const std::vector<sourced>& objects, const env_lookup& env) {
  limit_layers layers;
  for (const auto& l : objects) {
    if (!l.value.is_object())
      fail("limits", l.source, "must be an object");
    for (const auto& [key, value] : l.value.get_object()) {
      const auto* known = find_limit(key);
      if (known == nullptr)
        fail("limits", l.source, "has an unknown key " + quoted(key));
      layers[known->name] = {value, l.source};
    }
  }
  for (const auto& l : limit_settings) {
    const auto name = env_name(l.name);
    if (auto text = env(name)) {
      auto v = parse_integer(*text);
      if (!v)
        fail("limits." + std::string(l.name), name, "must be an integer");
      layers[l.name] = {*v, name};
    }
  }
  return layers;
}

void apply_limits(limits& l, const limit_layers& layers) {
  for (const auto& [key, v] : layers) {
    const auto* setting = find_limit(key);
    const auto name = "limits." + std::string(key);
    setting->set(l, as_integer(v.value, name, v.source, setting->min, setting->max));
  }
}

} // namespace tokengate::proxy::config_parse
