// The TLS blocks of the configuration (README "TLS"): merged key by key from the file,
// TOKENGATE_<BLOCK>, TOKENGATE_<BLOCK>_<KEY> and --<block>-<key>; every mistake one line.
#include "proxy/config.hpp"

#include "tests/unit/proxy/config_checks.hpp"

#include <catch2/catch.hpp>

#include <string>
#include <vector>

using namespace tokengate;
using namespace tokengate::proxy;
using namespace tokengate::proxy::testing;

TEST_CASE("TLS is off by default, and the admin listener stays plain", "[config][tls]") {
  const auto c = load({});
  CHECK_FALSE(c.tls.enabled());
  CHECK_FALSE(c.admin_tls.enabled());
  CHECK_FALSE(c.upstream_tls.enabled);
}

TEST_CASE("the tls block merges key by key: file, TOKENGATE_TLS, TOKENGATE_TLS_<KEY>, flag",
          "[config][tls]") {
  config_file f(R"({"tls": {"cert_file": "/file.crt", "key_file": "/file.key",
                         "min_version": "1.3", "ciphers": "ECDHE-RSA-AES128-GCM-SHA256"}})");
  const auto c = load({"--config", f.path, "--tls-client-ca-file", "/flag-ca.crt"},
                      {{"TOKENGATE_TLS", R"({"key_file": "/env-json.key"})"},
                       {"TOKENGATE_TLS_CERT_FILE", "/env.crt"}});
  CHECK(c.tls.cert_file == "/env.crt");
  CHECK(c.tls.key_file == "/env-json.key");
  CHECK(c.tls.client_ca_file == "/flag-ca.crt");
  CHECK(c.tls.tls13_only);
  CHECK(c.tls.ciphers == "ECDHE-RSA-AES128-GCM-SHA256");
  CHECK_FALSE(c.admin_tls.enabled());

  const auto admin = load({"--admin-tls-cert-file", "/a.crt", "--admin-tls-key-file=/a.key",
                           "--admin-tls-min-version", "1.2"});
  CHECK(admin.admin_tls.cert_file == "/a.crt");
  CHECK(admin.admin_tls.key_file == "/a.key");
  CHECK_FALSE(admin.admin_tls.tls13_only);
  CHECK_FALSE(admin.tls.enabled());
}

TEST_CASE("TLS mistakes are one line naming the key and its source", "[config][tls]") {
  CHECK(error_of({"--tls-cert-file", "/c.crt"}) ==
        "configuration error: tls.key_file is required with the certificate (from "
        "--tls-cert-file)");
  CHECK(error_of({}, {{"TOKENGATE_TLS_KEY_FILE", "/k.key"}}) ==
        "configuration error: tls.cert_file is required when tls has any setting (from "
        "TOKENGATE_TLS_KEY_FILE)");
  CHECK(error_of({"--tls-cert-file", "/c", "--tls-key-file", "/k", "--tls-min-version", "1.1"}) ==
        "configuration error: tls.min_version must be \"1.2\" or \"1.3\" (from "
        "--tls-min-version)");
  config_file unknown(R"({"tls": {"cert": "/c.crt"}})");
  CHECK(error_of({"--config", unknown.path}) ==
        "configuration error: tls has an unknown key \"cert\" (from config file " + unknown.path +
            ")");
  CHECK(error_of({"--upstream-tls-ca-file", "/ca.crt"}) ==
        "configuration error: upstream_tls.ca_file needs an https:// upstream (from "
        "--upstream-tls-ca-file)");
  CHECK(error_of({"--tls-certfile", "/c"}) ==
        "unknown option '--tls-certfile' (see tokengate --help)");
  // The block's variable is JSON as strict as the file: a repeated key is refused.
  CHECK(error_of({}, {{"TOKENGATE_TLS", R"({"cert_file":"/a.crt","cert_file":"/b.crt",)"
                                        R"("key_file":"/k.key"})"}}) ==
        "configuration error: TOKENGATE_TLS has a duplicate key \"cert_file\"");
  CHECK_THAT(error_of({}, {{"TOKENGATE_ADMIN_TLS", "{"}}),
             Catch::StartsWith("configuration error: TOKENGATE_ADMIN_TLS is not valid JSON"));
  CHECK(error_of({}, {{"TOKENGATE_TLS", "[]"}}) ==
        "configuration error: tls must be an object (from TOKENGATE_TLS)");
}

TEST_CASE("min_version written as a JSON number is taken by its value", "[config][tls]") {
  config_file f(R"({"tls": {"cert_file": "/c.crt", "key_file": "/k.key", "min_version": 1.3}})");
  CHECK(load({"--config", f.path}).tls.tls13_only);
  config_file twelve(
      R"({"tls": {"cert_file": "/c.crt", "key_file": "/k.key", "min_version": 1.2}})");
  CHECK_FALSE(load({"--config", twelve.path}).tls.tls13_only);
  config_file eleven(
      R"({"tls": {"cert_file": "/c.crt", "key_file": "/k.key", "min_version": 1.1}})");
  CHECK_THAT(error_of({"--config", eleven.path}),
             Catch::StartsWith("configuration error: tls.min_version must be \"1.2\" or \"1.3\""));
}

TEST_CASE("an https:// upstream turns on upstream TLS, port 443 by default", "[config][tls]") {
  const auto c =
      load({"--upstream", "https://app.internal"}, {{"TOKENGATE_UPSTREAM_TLS_CA_FILE", "/ca.crt"}});
  CHECK(c.upstream.host == "app.internal");
  CHECK(c.upstream.port == 443);
  CHECK(c.upstream_tls.enabled);
  CHECK(c.upstream_tls.ca_file == "/ca.crt");
  const auto plain = load({"--upstream", "http://app.internal"});
  CHECK(plain.upstream.port == 80);
  CHECK_FALSE(plain.upstream_tls.enabled);
  CHECK(error_of({"--upstream", "https://a:1", "--upstream-tls-cert-file", "/c.crt"}) ==
        "configuration error: upstream_tls.cert_file and key_file must be set together (from "
        "--upstream-tls-cert-file)");
}
