#include "proxy/config.hpp"

#include "proxy/config_tls.hpp"

#include "proxy/http1.hpp"
#include "proxy/path.hpp"
#include "tokenapi/json_parse.hpp"

#include <boost/json.hpp>

#include <algorithm>
#include <charconv>
#include <fstream>
#include <map>
#include <sstream>

namespace tokengate::proxy {
namespace json = boost::json;
namespace {

enum class kind { text, integer, document };

struct setting {
  std::string_view name; ///< key in the file
  std::string_view flag; ///< "" when there is no flag
  kind type;
};

constexpr setting settings[] = {
    {"listen", "--listen", kind::text},
    {"admin_listen", "--admin-listen", kind::text},
    {"upstream", "--upstream", kind::text},
    {"data_dir", "--data-dir", kind::text},
    {"bootstrap_token_file", "--bootstrap-token-file", kind::text},
    {"audit_log_file", "--audit-log-file", kind::text},
    {"threads", "--threads", kind::integer},
    {"log_level", "--log-level", kind::text},
    {"trusted_proxies", "", kind::document},
    {"routes", "", kind::document},
    {"default_route", "", kind::document},
    {"limits", "", kind::document},
    {"database_url", "--database-url", kind::text},
    {"database_password_file", "--database-password-file", kind::text},
    {"max_staleness_ms", "--max-staleness-ms", kind::integer},
};

constexpr std::string_view limit_names[] = {
    "max_header_bytes", "max_admin_body_bytes",        "header_timeout_ms",
    "idle_timeout_ms",  "upstream_connect_timeout_ms", "upstream_timeout_ms",
    "max_connections",  "shutdown_timeout_ms",
};

// A key as JSON text: quoted, with control characters escaped, so a message stays one line.
std::string quoted(std::string_view key) { return json::serialize(json::string(key)); }

std::string env_name(std::string_view key) {
  std::string name = "TOKENGATE_";
  for (char c : key)
    name.push_back(static_cast<char>(c >= 'a' && c <= 'z' ? c - 32 : c));
  return name;
}

/// A value and where it came from, for messages.
struct sourced {
  json::value value;
  std::string source;
};

[[noreturn]] void fail(std::string_view name, const std::string& source, std::string_view what) {
  throw config_error("configuration error: " + std::string(name) + " " + std::string(what) +
                     " (from " + source + ")");
}

std::optional<std::int64_t> parse_integer(std::string_view s) {
  std::int64_t v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size() || s.empty())
    return std::nullopt;
  return v;
}

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
    // trusted_proxies may also be a plain comma-separated list.
    if (s.name == "trusted_proxies" && !text.starts_with('[')) {
      json::array list;
      std::stringstream in{std::string(text)};
      for (std::string item; std::getline(in, item, ',');) {
        // "10.0.0.0/8, 192.168.0.0/16": a space after each comma is the usual way to write it.
        const auto first = item.find_first_not_of(" \t");
        if (first != std::string::npos)
          list.emplace_back(item.substr(first, item.find_last_not_of(" \t") - first + 1));
      }
      return list;
    }
    return parse_json_text(text, source);
  }
  return nullptr;
}

std::string as_text(const sourced& v, std::string_view name) {
  if (!v.value.is_string())
    fail(name, v.source, "must be a string");
  return std::string(v.value.get_string());
}

std::int64_t as_integer(const json::value& v, std::string_view name, const std::string& source,
                        std::int64_t min, std::int64_t max) {
  std::int64_t n = 0;
  if (v.is_int64())
    n = v.get_int64();
  else if (v.is_uint64() && v.get_uint64() <= static_cast<std::uint64_t>(max))
    n = static_cast<std::int64_t>(v.get_uint64());
  else
    n = min - 1;
  if (n < min || n > max)
    fail(name, source,
         "must be an integer from " + std::to_string(min) + " to " + std::to_string(max));
  return n;
}

endpoint as_listen(const sourced& v, std::string_view name) {
  auto e = parse_listen_address(as_text(v, name));
  if (!e)
    fail(name, v.source, "must be HOST:PORT with an IP address, e.g. 127.0.0.1:8080 or [::1]:8080");
  return *e;
}

endpoint as_upstream(const sourced& v) {
  const auto owned = as_text(v, "upstream");
  std::string_view text = owned;
  const auto bad = [&](std::string_view why) { fail("upstream", v.source, why); };
  const bool https = text.starts_with("https://");
  if (!https && !text.starts_with("http://"))
    bad("must be a URL such as http://127.0.0.1:8081 or https://app.internal");
  text.remove_prefix(https ? 8 : 7);
  if (text.ends_with('/'))
    text.remove_suffix(1);
  if (text.find_first_of("/?#@") != std::string_view::npos)
    bad("must not have a path, query or user info: only http://HOST[:PORT]");
  endpoint e;
  e.port = https ? 443 : 80;
  std::string_view host = text;
  if (text.starts_with('[')) {
    const auto close = text.find(']');
    if (close == std::string_view::npos)
      bad("has an unterminated IPv6 address");
    host = text.substr(1, close - 1);
    text.remove_prefix(close + 1);
    if (!text.empty() && !text.starts_with(':'))
      bad("must be http://HOST[:PORT]");
    text = text.empty() ? text : text.substr(1);
    if (!text.empty()) {
      auto port = parse_integer(text);
      if (!port || *port < 1 || *port > 65535)
        bad("has an invalid port");
      e.port = static_cast<std::uint16_t>(*port);
    }
  } else if (const auto colon = text.rfind(':'); colon != std::string_view::npos) {
    host = text.substr(0, colon);
    auto port = parse_integer(text.substr(colon + 1));
    if (!port || *port < 1 || *port > 65535)
      bad("has an invalid port");
    e.port = static_cast<std::uint16_t>(*port);
  }
  if (host.empty() || !std::all_of(host.begin(), host.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == ':';
      }))
    bad("has an invalid host");
  e.host = host;
  return e;
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
      if (!item.is_string() || !item.get_string().starts_with("/"))
        fail(field, source, "must be a path starting with '/'");
      normalized_target normal;
      if (!normalize_target(item.get_string(), normal) || normal.has_query)
        fail(field, source, "must be a plain path such as /alerts");
      r.prefix = normal.path;
      if (r.prefix.size() > 1 && r.prefix.ends_with('/'))
        r.prefix.pop_back();
      has_prefix = true;
    } else if (key == "methods" && !is_default) {
      if (!item.is_array() || item.get_array().empty())
        fail(field, source, "must be a non-empty array of HTTP methods");
      for (const auto& m : item.get_array()) {
        if (!m.is_string() || m.get_string().empty() ||
            !std::all_of(m.get_string().begin(), m.get_string().end(),
                         [](char c) { return (c >= 'A' && c <= 'Z') || c == '-' || c == '_'; }))
          fail(field, source, "must hold upper-case HTTP methods such as \"GET\"");
        r.methods.emplace_back(m.get_string());
      }
    } else if (key == "permissions") {
      r.permissions = as_permissions(item, field, source);
      has_permissions = true;
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
  return r;
}

void apply_limit(limits& l, std::string_view key, const json::value& v, const std::string& source) {
  const auto name = "limits." + std::string(key);
  constexpr std::int64_t day_ms = 24LL * 3600 * 1000;
  const auto ms = [&] { return std::chrono::milliseconds(as_integer(v, name, source, 1, day_ms)); };
  if (key == "max_header_bytes")
    l.max_header_bytes = static_cast<std::size_t>(as_integer(v, name, source, 1024, 1 << 20));
  else if (key == "max_admin_body_bytes")
    l.max_admin_body_bytes = static_cast<std::size_t>(as_integer(v, name, source, 1, 16 << 20));
  else if (key == "header_timeout_ms")
    l.header_timeout = ms();
  else if (key == "idle_timeout_ms")
    l.idle_timeout = ms();
  else if (key == "upstream_connect_timeout_ms")
    l.upstream_connect_timeout = ms();
  else if (key == "upstream_timeout_ms")
    l.upstream_timeout = ms();
  else if (key == "max_connections")
    l.max_connections = static_cast<std::size_t>(as_integer(v, name, source, 1, 1'000'000));
  else if (key == "shutdown_timeout_ms")
    l.shutdown_timeout = ms();
  else
    fail("limits", source, "has an unknown key " + quoted(key));
}

void apply(config& c, std::string_view name, const sourced& v) {
  if (name == "listen") {
    c.listen = as_listen(v, name);
  } else if (name == "admin_listen") {
    c.admin_listen = as_listen(v, name);
  } else if (name == "upstream") {
    c.upstream = as_upstream(v);
    c.upstream_tls.enabled = as_text(v, name).starts_with("https://");
  } else if (name == "data_dir") {
    if (as_text(v, name).empty())
      fail(name, v.source, "must not be empty");
    c.data_dir = as_text(v, name);
  } else if (name == "bootstrap_token_file") {
    if (as_text(v, name).empty())
      fail(name, v.source, "must not be empty");
    c.bootstrap_token_file = as_text(v, name);
  } else if (name == "audit_log_file") {
    c.audit_log_file = as_text(v, name);
  } else if (name == "database_url") {
    // The message never quotes the value: it may hold a password.
    if (as_text(v, name).empty())
      fail(name, v.source, "must not be empty");
    c.database_url = as_text(v, name);
  } else if (name == "database_password_file") {
    if (as_text(v, name).empty())
      fail(name, v.source, "must not be empty");
    c.database_password_file = as_text(v, name);
  } else if (name == "max_staleness_ms") {
    constexpr std::int64_t day_ms = 24LL * 3600 * 1000;
    c.max_staleness = std::chrono::milliseconds(as_integer(v.value, name, v.source, 2000, day_ms));
  } else if (name == "threads") {
    c.threads = static_cast<unsigned>(as_integer(v.value, name, v.source, 1, 256));
  } else if (name == "log_level") {
    const auto level = as_text(v, name);
    if (level == "debug")
      c.level = log_level::debug;
    else if (level == "info")
      c.level = log_level::info;
    else if (level == "warn")
      c.level = log_level::warn;
    else if (level == "error")
      c.level = log_level::error;
    else
      fail(name, v.source, "must be one of debug, info, warn, error");
  } else if (name == "trusted_proxies") {
    if (!v.value.is_array())
      fail(name, v.source, "must be an array of CIDR blocks");
    for (const auto& item : v.value.get_array()) {
      auto block = item.is_string() ? tokenapi::cidr_block::parse(item.get_string())
                                    : std::optional<tokenapi::cidr_block>{};
      if (!block)
        fail(name, v.source, "holds an invalid CIDR block " + json::serialize(item));
      c.trusted_proxies.push_back(*block);
    }
  } else if (name == "routes") {
    if (!v.value.is_array())
      fail(name, v.source, "must be an array of route objects");
    std::size_t i = 0;
    for (const auto& item : v.value.get_array())
      c.routes.push_back(as_route(item, "routes[" + std::to_string(i++) + "]", v.source, false));
  } else if (name == "default_route") {
    c.default_route =
        v.value.is_null()
            ? std::nullopt
            : std::optional<route>(as_route(v.value, "default_route", v.source, true));
  }
}

} // namespace

std::string endpoint::to_string() const {
  const bool v6 = host.find(':') != std::string::npos;
  return (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

std::optional<endpoint> parse_listen_address(std::string_view text) {
  const auto colon = text.rfind(':');
  if (colon == std::string_view::npos)
    return std::nullopt;
  auto host = text.substr(0, colon);
  if (host.starts_with('[') && host.ends_with(']'))
    host = host.substr(1, host.size() - 2);
  else if (host.find(':') != std::string_view::npos)
    return std::nullopt;
  if (host == "localhost")
    host = "127.0.0.1";
  if (!tokenapi::ip_address::parse(host))
    return std::nullopt;
  auto port = parse_integer(text.substr(colon + 1));
  if (!port || *port < 0 || *port > 65535)
    return std::nullopt;
  return endpoint{std::string(host), static_cast<std::uint16_t>(*port)};
}

namespace {

std::string one_line(const std::string& message) {
  std::string out;
  for (char c : message) {
    const auto u = static_cast<unsigned char>(c);
    if (u >= 0x20 && u != 0x7f) {
      out.push_back(c);
      continue;
    }
    static constexpr char hex[] = "0123456789abcdef";
    out.append("\\x");
    out.push_back(hex[u >> 4]);
    out.push_back(hex[u & 0xf]);
  }
  return out;
}

} // namespace

config_error::config_error(const std::string& message) : std::runtime_error(one_line(message)) {}

std::optional<std::string> read_whole_file(const std::string& path) {
  std::ifstream in(path);
  if (!in)
    return std::nullopt;
  std::stringstream text;
  text << in.rdbuf();
  return std::move(text).str();
}

config load_config(const std::vector<std::string_view>& args, const env_lookup& lookup,
                   const file_reader& read) {
  // A variable set to the empty string counts as unset, as orchestrators often leave them.
  const auto env = [&](const std::string& name) {
    auto v = lookup(name);
    return v && !v->empty() ? v : std::nullopt;
  };
  std::map<std::string_view, sourced> layers;
  sourced limits_from_file;
  std::map<std::string_view, sourced> limit_layers;

  // Flags first, only to find --config; they are applied last.
  std::map<std::string_view, std::string_view> flags;
  for (std::size_t i = 0; i < args.size(); ++i) {
    auto arg = args[i];
    std::string_view value;
    const auto eq = arg.find('=');
    auto name = arg.substr(0, eq);
    const bool known = name == "--config" || is_tls_flag(name) ||
                       std::any_of(std::begin(settings), std::end(settings), [&](const setting& s) {
                         return !s.flag.empty() && s.flag == name;
                       });
    if (!known)
      throw config_error("unknown option '" + std::string(arg) + "' (see tokengate --help)");
    if (eq != std::string_view::npos)
      value = arg.substr(eq + 1);
    else if (i + 1 < args.size())
      value = args[++i];
    else
      throw config_error("option " + std::string(name) + " needs a value");
    flags[name] = value;
  }

  std::optional<std::string> file;
  if (auto f = flags.find("--config"); f != flags.end())
    file = std::string(f->second);
  else
    file = env("TOKENGATE_CONFIG");
  json::value doc;
  std::string file_source;
  if (file) {
    const auto text = read(*file);
    if (!text)
      throw config_error("configuration error: cannot read config file " + *file);
    const auto source = file_source = "config file " + *file;
    doc = parse_json_text(*text, source);
    if (!doc.is_object())
      throw config_error("configuration error: " + source + " must hold a JSON object");
    for (const auto& [key, value] : doc.get_object()) {
      const std::string_view name = key;
      if (is_tls_block(name))
        continue; // merged on their own, below
      auto s = std::find_if(std::begin(settings), std::end(settings),
                            [name](const setting& st) { return st.name == name; });
      if (s == std::end(settings))
        throw config_error("configuration error: unknown key " + quoted(name) + " in " + source);
      layers[s->name] = {value, source};
      if (s->name == "limits")
        limits_from_file = layers[s->name];
    }
  }
  std::vector<sourced> limit_sources;
  if (!limits_from_file.source.empty())
    limit_sources.push_back(limits_from_file);

  for (const auto& s : settings)
    if (auto text = env(env_name(s.name)))
      layers[s.name] = {typed(s, *text, env_name(s.name)), env_name(s.name)};
  if (auto l = layers.find("limits");
      l != layers.end() && l->second.source != limits_from_file.source)
    limit_sources.push_back(l->second);
  for (const auto& s : settings)
    if (auto f = flags.find(s.flag); !s.flag.empty() && f != flags.end())
      layers[s.name] = {typed(s, f->second, std::string(s.flag)), std::string(s.flag)};

  // limits merge key by key: the file's, then TOKENGATE_LIMITS, then TOKENGATE_<LIMIT>.
  for (const auto& l : limit_sources) {
    if (!l.value.is_object())
      fail("limits", l.source, "must be an object");
    for (const auto& [key, value] : l.value.get_object()) {
      auto known = std::find(std::begin(limit_names), std::end(limit_names), key);
      if (known == std::end(limit_names))
        fail("limits", l.source, "has an unknown key " + quoted(key));
      limit_layers[*known] = {value, l.source};
    }
  }
  for (auto key : limit_names) {
    const auto name = env_name(key);
    if (auto text = env(name)) {
      auto v = parse_integer(*text);
      if (!v)
        fail("limits." + std::string(key), name, "must be an integer");
      limit_layers[key] = {*v, name};
    }
  }

  config c;
  bool bootstrap_set = false;
  for (const auto& s : settings) {
    if (auto l = layers.find(s.name); l != layers.end() && s.name != "limits") {
      apply(c, s.name, l->second);
      bootstrap_set = bootstrap_set || s.name == "bootstrap_token_file";
    }
  }
  if (!bootstrap_set)
    c.bootstrap_token_file = c.data_dir / "admin-token";
  for (const auto& [key, v] : limit_layers)
    apply_limit(c.limits, key, v.value, v.source);
  apply_tls_settings(c, doc.if_object(), file_source, env, flags);
  if (c.database_url.empty() && (!c.database_password_file.empty() || c.max_staleness))
    throw config_error("configuration error: database_password_file and max_staleness_ms need "
                       "database_url");
  if (c.listen == c.admin_listen && c.listen.port != 0)
    throw config_error("configuration error: listen and admin_listen must differ");
  return c;
}

std::string_view usage() {
  return R"(tokengate: an auth sidecar in front of one HTTP backend

Usage:
  tokengate serve [--config FILE] [--listen HOST:PORT] [--admin-listen HOST:PORT]
                  [--upstream URL] [--data-dir DIR] [--bootstrap-token-file FILE]
                  [--audit-log-file FILE] [--threads N] [--log-level debug|info|warn|error]
                  [--database-url URL] [--database-password-file FILE]
                  [--max-staleness-ms N]
                  [--tls-cert-file FILE --tls-key-file FILE] [--tls-client-ca-file FILE]
                  [--tls-min-version 1.2|1.3] [--tls-ciphers LIST]
                  [--admin-tls-...: the same for the admin listener]
                  [--upstream-tls-ca-file FILE]
                  [--upstream-tls-cert-file FILE --upstream-tls-key-file FILE]
  tokengate migrate --data-dir DIR --database-url URL [--database-password-file FILE]
                        copy a standalone store's tokens into the fleet's database
  tokengate keygen      print a new API key value (for a bootstrap token file)
  tokengate --help
  tokengate --version

Every setting also comes from the JSON config file and from TOKENGATE_<NAME>
(e.g. TOKENGATE_UPSTREAM); precedence: flag > environment > file > default.
See README.md for the keys, the routes table and the limits.
)";
}

} // namespace tokengate::proxy
