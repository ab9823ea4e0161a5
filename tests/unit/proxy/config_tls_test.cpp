// The TLS blocks of the configuration (README "TLS"): merged key by key from the file,
// TOKENGATE_<BLOCK>, TOKENGATE_<BLOCK>_<KEY> and --<block>-<key>; every mistake one line.
#include "proxy/config.hpp"

#include "tests/support/temp_dir.hpp"

#include <catch2/catch.hpp>

#include <fstream>
#include <map>
#include <string>
#include <vector>

using namespace tokengate;
using namespace tokengate::proxy;

namespace {

config load_tls(const std::vector<std::string_view>& args,
                const std::map<std::string, std::string>& env = {}) {
  return load_config(args, [&](const std::string& name) -> std::optional<std::string> {
    auto v = env.find(name);
    return v == env.end() ? std::nullopt : std::optional<std::string>(v->second);
  });
}

std::string tls_error(const std::vector<std::string_view>& args,
                      const std::map<std::string, std::string>& env = {}) {
  try {
    (void)load_tls(args, env);
  } catch (const config_error& e) {
    return e.what();
  }
  FAIL("no config_error");
  return {};
}

struct tls_file {
  test::temp_dir dir;
  std::string path = (dir / "tokengate.json").string();
  explicit tls_file(const std::string& text) { std::ofstream(path) << text; }
};

} // namespace

TEST_CASE("TLS is off by default, and the admin listener stays plain", "[config][tls]") {
  const auto c = load_tls({});
  CHECK_FALSE(c.tls.enabled());
  CHECK_FALSE(c.admin_tls.enabled());
  CHECK_FALSE(c.upstream_tls.enabled);
}

TEST_CASE("the tls block merges key by key: file, TOKENGATE_TLS, TOKENGATE_TLS_<KEY>, flag",
          "[config][tls]") {
  tls_file f(R"({"tls": {"cert_file": "/file.crt", "key_file": "/file.key",
                         "min_version": "1.3", "ciphers": "ECDHE-RSA-AES128-GCM-SHA256"}})");
  const auto c = load_tls({"--config", f.path, "--tls-client-ca-file", "/flag-ca.crt"},
                          {{"TOKENGATE_TLS", R"({"key_file": "/env-json.key"})"},
                           {"TOKENGATE_TLS_CERT_FILE", "/env.crt"}});
  CHECK(c.tls.cert_file == "/env.crt");
  CHECK(c.tls.key_file == "/env-json.key");
  CHECK(c.tls.client_ca_file == "/flag-ca.crt");
  CHECK(c.tls.tls13_only);
  CHECK(c.tls.ciphers == "ECDHE-RSA-AES128-GCM-SHA256");
  CHECK_FALSE(c.admin_tls.enabled());

  const auto admin = load_tls({"--admin-tls-cert-file", "/a.crt", "--admin-tls-key-file=/a.key",
                               "--admin-tls-min-version", "1.2"});
  CHECK(admin.admin_tls.cert_file == "/a.crt");
  CHECK(admin.admin_tls.key_file == "/a.key");
  CHECK_FALSE(admin.admin_tls.tls13_only);
  CHECK_FALSE(admin.tls.enabled());
}

TEST_CASE("TLS mistakes are one line naming the key and its source", "[config][tls]") {
  CHECK(tls_error({"--tls-cert-file", "/c.crt"}) ==
        "configuration error: tls.key_file is required with the certificate (from "
        "--tls-cert-file)");
  CHECK(tls_error({}, {{"TOKENGATE_TLS_KEY_FILE", "/k.key"}}) ==
        "configuration error: tls.cert_file is required when tls has any setting (from "
        "TOKENGATE_TLS_KEY_FILE)");
  CHECK(tls_error({"--tls-cert-file", "/c", "--tls-key-file", "/k", "--tls-min-version", "1.1"}) ==
        "configuration error: tls.min_version must be \"1.2\" or \"1.3\" (from "
        "--tls-min-version)");
  tls_file unknown(R"({"tls": {"cert": "/c.crt"}})");
  CHECK(tls_error({"--config", unknown.path}) ==
        "configuration error: tls has an unknown key \"cert\" (from config file " + unknown.path +
            ")");
  CHECK(tls_error({"--upstream-tls-ca-file", "/ca.crt"}) ==
        "configuration error: upstream_tls.ca_file needs an https:// upstream (from "
        "--upstream-tls-ca-file)");
  CHECK(tls_error({"--tls-certfile", "/c"}) ==
        "unknown option '--tls-certfile' (see tokengate --help)");
}

TEST_CASE("an https:// upstream turns on upstream TLS, port 443 by default", "[config][tls]") {
  const auto c = load_tls({"--upstream", "https://app.internal"},
                          {{"TOKENGATE_UPSTREAM_TLS_CA_FILE", "/ca.crt"}});
  CHECK(c.upstream.host == "app.internal");
  CHECK(c.upstream.port == 443);
  CHECK(c.upstream_tls.enabled);
  CHECK(c.upstream_tls.ca_file == "/ca.crt");
  const auto plain = load_tls({"--upstream", "http://app.internal"});
  CHECK(plain.upstream.port == 80);
  CHECK_FALSE(plain.upstream_tls.enabled);
  CHECK(tls_error({"--upstream", "https://a:1", "--upstream-tls-cert-file", "/c.crt"}) ==
        "configuration error: upstream_tls.cert_file and key_file must be set together (from "
        "--upstream-tls-cert-file)");
}
