#include "proxy/config_tls.hpp"

#include "proxy/config_parse.hpp"

#include <boost/json/serialize.hpp>

#include <algorithm>
#include <span>

namespace tokengate::proxy {
namespace json = boost::json;
namespace {

constexpr std::string_view listener_keys[] = {"cert_file", "key_file", "client_ca_file",
                                              "min_version", "ciphers"};
constexpr std::string_view upstream_keys[] = {"ca_file", "cert_file", "key_file"};

struct block {
  std::string_view name;
  std::span<const std::string_view> keys;
};
constexpr block blocks[] = {
    {"tls", listener_keys}, {"admin_tls", listener_keys}, {"upstream_tls", upstream_keys}};

struct sourced_text {
  std::string text;
  std::string source;
};

[[noreturn]] void fail(const std::string& name, const std::string& source, std::string_view what) {
  throw config_error("configuration error: " + name + " " + std::string(what) + " (from " + source +
                     ")");
}

std::string upper(std::string_view s) {
  std::string out;
  for (char c : s)
    out.push_back(c >= 'a' && c <= 'z' ? static_cast<char>(c - 32) : c);
  return out;
}

std::string dashed(std::string_view s) {
  std::string out(s);
  std::replace(out.begin(), out.end(), '_', '-');
  return out;
}

std::string flag_of(const block& b, std::string_view key) {
  return "--" + dashed(b.name) + "-" + dashed(key);
}

// One JSON member of a block as text: strings, and numbers for min_version (1.2, 1.3).
std::string text_of(const json::value& v, const std::string& name, const std::string& source) {
  if (v.is_string())
    return std::string(v.get_string());
  if (v.is_double() && name.ends_with("min_version")) {
    // Written as a number, 1.2 serialises as 1.2E0: the two versions by value.
    if (v.get_double() == 1.2)
      return "1.2";
    if (v.get_double() == 1.3)
      return "1.3";
    return json::serialize(v);
  }
  fail(name, source, "must be a string");
}

// A block object's members into `into`, each key checked.
void take_object(const block& b, const json::value& v, const std::string& source,
                 std::map<std::string_view, sourced_text>& into) {
  if (!v.is_object())
    fail(std::string(b.name), source, "must be an object");
  for (const auto& [key, item] : v.get_object()) {
    auto known = std::find(b.keys.begin(), b.keys.end(), std::string_view(key));
    if (known == b.keys.end())
      fail(std::string(b.name), source, "has an unknown key " + json::serialize(json::string(key)));
    into[*known] = {text_of(item, std::string(b.name) + "." + std::string(key), source), source};
  }
}

std::map<std::string_view, sourced_text>
layers_of(const block& b, const json::object* file, const std::string& file_source,
          const env_lookup& env, const std::map<std::string_view, std::string_view>& flags) {
  std::map<std::string_view, sourced_text> layers;
  if (file != nullptr)
    if (auto it = file->find(b.name); it != file->end())
      take_object(b, it->value(), file_source, layers);
  const auto block_env = "TOKENGATE_" + upper(b.name);
  if (auto text = env(block_env)) {
    // As for the file and TOKENGATE_LIMITS: a syntax error or a repeated key is one line.
    take_object(b, config_parse::parse_json_text(*text, block_env), block_env, layers);
  }
  for (auto key : b.keys) {
    const auto name = block_env + "_" + upper(key);
    if (auto text = env(name))
      layers[key] = {*text, name};
  }
  for (auto key : b.keys)
    if (auto f = flags.find(flag_of(b, key)); f != flags.end())
      layers[key] = {std::string(f->second), flag_of(b, key)};
  return layers;
}

void apply_listener(tls_settings& t, std::string_view block_name,
                    const std::map<std::string_view, sourced_text>& layers) {
  const auto name = [&](std::string_view key) {
    return std::string(block_name) + "." + std::string(key);
  };
  for (const auto& [key, v] : layers) {
    if (v.text.empty())
      fail(name(key), v.source, "must not be empty");
    if (key == "cert_file")
      t.cert_file = v.text;
    else if (key == "key_file")
      t.key_file = v.text;
    else if (key == "client_ca_file")
      t.client_ca_file = v.text;
    else if (key == "ciphers")
      t.ciphers = v.text;
    else if (key == "min_version" && (v.text == "1.2" || v.text == "1.3"))
      t.tls13_only = v.text == "1.3";
    else
      fail(name(key), v.source, "must be \"1.2\" or \"1.3\"");
  }
  if (layers.empty())
    return;
  if (!layers.contains("cert_file"))
    fail(name("cert_file"), layers.begin()->second.source,
         "is required when " + std::string(block_name) + " has any setting");
  if (!layers.contains("key_file"))
    fail(name("key_file"), layers.at("cert_file").source, "is required with the certificate");
}

void apply_upstream(config& c, const std::map<std::string_view, sourced_text>& layers) {
  auto& u = c.upstream_tls;
  for (const auto& [key, v] : layers) {
    const auto name = "upstream_tls." + std::string(key);
    if (v.text.empty())
      fail(name, v.source, "must not be empty");
    if (!u.enabled)
      fail(name, v.source, "needs an https:// upstream");
    (key == "ca_file" ? u.ca_file : key == "cert_file" ? u.cert_file : u.key_file) = v.text;
  }
  if (u.cert_file.empty() != u.key_file.empty())
    fail("upstream_tls.cert_file and key_file", layers.begin()->second.source,
         "must be set together");
}

} // namespace

bool is_tls_block(std::string_view key) noexcept {
  return std::any_of(std::begin(blocks), std::end(blocks),
                     [&](const block& b) { return b.name == key; });
}

bool is_tls_flag(std::string_view flag) noexcept {
  for (const auto& b : blocks)
    for (auto key : b.keys)
      if (flag_of(b, key) == flag)
        return true;
  return false;
}

void apply_tls_settings(config& c, const json::object* file, const std::string& file_source,
                        const env_lookup& env,
                        const std::map<std::string_view, std::string_view>& flags) {
  apply_listener(c.tls, "tls", layers_of(blocks[0], file, file_source, env, flags));
  apply_listener(c.admin_tls, "admin_tls", layers_of(blocks[1], file, file_source, env, flags));
  apply_upstream(c, layers_of(blocks[2], file, file_source, env, flags));
}

} // namespace tokengate::proxy
