// Configuration: built-in defaults, a JSON file, TOKENGATE_* variables and flags, in rising
// precedence, and what each setting holds once loaded. Mistakes: config_errors_test.cpp.
#include "proxy/config.hpp"
#include "proxy/log.hpp"

#include "tests/unit/proxy/config_checks.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <functional>
#include <set>
#include <string>
#include <vector>

using namespace tokengate;
using namespace tokengate::proxy;
using tokenapi::permission;
using namespace std::chrono_literals;
using namespace tokengate::proxy::testing;
using Catch::Contains;

TEST_CASE("with nothing given every setting has its default", "[config]") {
  fake_env env;
  const auto c = load_config({}, env.lookup());
  CHECK(c.listen == endpoint{"127.0.0.1", 8080});
  CHECK(c.admin_listen == endpoint{"127.0.0.1", 9901});
  CHECK(c.upstream == endpoint{"127.0.0.1", 8081});
  CHECK(c.data_dir == "./data");
  CHECK(c.bootstrap_token_file == std::filesystem::path("./data") / "admin-token");
  CHECK(c.threads == 2);
  CHECK(c.level == log_level::info);
  CHECK(c.trusted_proxies.empty());
  CHECK(c.routes.empty());
  REQUIRE(c.default_route.has_value());
  CHECK(c.default_route->prefix == "/");
  CHECK(c.default_route->methods.empty());
  CHECK_FALSE(c.default_route->open);
  CHECK(c.default_route->permissions.empty());
  CHECK(c.limits.max_header_bytes == 16384);
  CHECK(c.limits.max_admin_body_bytes == 65536);
  CHECK(c.limits.header_timeout == 10000ms);
  CHECK(c.limits.idle_timeout == 60000ms);
  CHECK(c.limits.upstream_connect_timeout == 2000ms);
  CHECK(c.limits.upstream_timeout == 30000ms);
  CHECK(c.limits.upstream_idle_timeout == 60000ms);
  CHECK(c.limits.max_connections == 10000);
  CHECK(c.limits.max_tls_handshakes == 1000);
  CHECK(c.limits.shutdown_timeout == 10000ms);
  // The config file is looked for in the environment, and every setting too.
  CHECK(std::find(env.asked.begin(), env.asked.end(), "TOKENGATE_CONFIG") != env.asked.end());
  CHECK(std::find(env.asked.begin(), env.asked.end(), "TOKENGATE_UPSTREAM") != env.asked.end());
  CHECK(std::find(env.asked.begin(), env.asked.end(), "TOKENGATE_BOOTSTRAP_TOKEN_FILE") !=
        env.asked.end());
}

TEST_CASE("a TOKENGATE_ variable no setting reads is found, in any case, but not those "
          "Kubernetes makes for Services",
          "[config]") {
  fake_env env;
  (void)load_config({}, env.lookup());
  const std::set<std::string> read(env.asked.begin(), env.asked.end());
  const std::vector<std::string> names{
      // read: a setting, a limit, a TLS block's key, the config file
      "TOKENGATE_UPSTREAM", "TOKENGATE_MAX_HEADER_BYTES", "TOKENGATE_TLS_CERT_FILE",
      "TOKENGATE_UPSTREAM_TLS_CA_FILE", "TOKENGATE_ADMIN_TLS", "TOKENGATE_CONFIG",
      // not tokengate's
      "PATH", "TOKENGATEWAY", "TOKENGATE",
      // Kubernetes' service links for Services named tokengate and tokengate-admin
      "TOKENGATE_SERVICE_HOST", "TOKENGATE_SERVICE_PORT", "TOKENGATE_SERVICE_PORT_HTTP",
      "TOKENGATE_PORT", "TOKENGATE_PORT_8080_TCP", "TOKENGATE_PORT_8080_TCP_ADDR",
      "TOKENGATE_ADMIN_SERVICE_HOST", "TOKENGATE_ADMIN_PORT_9901_UDP_PROTO",
      // not read: misspelt, another case, twice, only like a service link
      "TOKENGATE_TLS_CERT", "tokengate_threads", "TokenGate_Upstream", "TOKENGATE_LIMIT",
      "TOKENGATE_", "TOKENGATE_TLS_CERT", "TOKENGATE_PORT_HTTP", "TOKENGATE_SERVICE_NAME"};
  CHECK(unread_variables(names, read) ==
        std::vector<std::string>{"TOKENGATE_", "TOKENGATE_LIMIT", "TOKENGATE_PORT_HTTP",
                                 "TOKENGATE_SERVICE_NAME", "TOKENGATE_TLS_CERT",
                                 "TokenGate_Upstream", "tokengate_threads"});
  CHECK(unread_variables({}, read).empty());
}

TEST_CASE("flag beats environment beats file beats default", "[config]") {
  config_file f(R"({"threads": 3, "listen": "127.0.0.1:7000", "upstream": "http://127.0.0.1:7001",
                    "log_level": "debug", "data_dir": "/srv/file"})");

  SECTION("file over default") {
    const auto c = load({"--config", f.path});
    CHECK(c.threads == 3);
    CHECK(c.listen == endpoint{"127.0.0.1", 7000});
    CHECK(c.upstream == endpoint{"127.0.0.1", 7001});
    CHECK(c.level == log_level::debug);
    CHECK(c.data_dir == "/srv/file");
    CHECK(c.admin_listen == endpoint{"127.0.0.1", 9901});
  }
  SECTION("environment over file") {
    const auto c = load({"--config", f.path},
                        {{"TOKENGATE_THREADS", "4"}, {"TOKENGATE_LISTEN", "127.0.0.1:7100"}});
    CHECK(c.threads == 4);
    CHECK(c.listen == endpoint{"127.0.0.1", 7100});
    CHECK(c.upstream == endpoint{"127.0.0.1", 7001});
    CHECK(c.level == log_level::debug);
  }
  SECTION("flag over environment") {
    const auto c = load({"--config", f.path, "--threads", "5", "--log-level=warn"},
                        {{"TOKENGATE_THREADS", "4"},
                         {"TOKENGATE_LISTEN", "127.0.0.1:7100"},
                         {"TOKENGATE_LOG_LEVEL", "error"}});
    CHECK(c.threads == 5);
    CHECK(c.level == log_level::warn);
    CHECK(c.listen == endpoint{"127.0.0.1", 7100});
    CHECK(c.upstream == endpoint{"127.0.0.1", 7001});
  }
  SECTION("the config file named by TOKENGATE_CONFIG") {
    const auto c = load({}, {{"TOKENGATE_CONFIG", f.path}});
    CHECK(c.threads == 3);
  }
  SECTION("--config over TOKENGATE_CONFIG") {
    config_file other(R"({"threads": 7})");
    const auto c = load({"--config=" + other.path}, {{"TOKENGATE_CONFIG", f.path}});
    CHECK(c.threads == 7);
    CHECK(c.listen == endpoint{"127.0.0.1", 8080});
  }
  SECTION("every flag") {
    const auto c =
        load({"--listen", "0.0.0.0:80", "--admin-listen", "[::1]:9000", "--upstream",
              "http://backend.local:3000", "--data-dir", "/var/lib/tg", "--bootstrap-token-file",
              "/run/secret", "--threads", "8", "--log-level", "error"});
    CHECK(c.listen == endpoint{"0.0.0.0", 80});
    CHECK(c.admin_listen == endpoint{"::1", 9000});
    CHECK(c.upstream == endpoint{"backend.local", 3000});
    CHECK(c.data_dir == "/var/lib/tg");
    CHECK(c.bootstrap_token_file == "/run/secret");
    CHECK(c.threads == 8);
    CHECK(c.level == log_level::error);
  }
}

namespace {

// One row of the README's settings table: the file's key, its flag ("" when none), its
// variable, the file's JSON around the key's value, three values (the file's, the variable's,
// the flag's) and how the loaded setting reads back as text.
struct setting_row {
  std::string key;
  std::string flag;
  std::string variable;
  std::string file; // JSON with %s where the file's value goes
  std::string in_file, in_env, in_flag;
  std::vector<std::string> also; // flags every load needs (an https:// upstream, say)
  std::function<std::string(const config&)> read;
};

std::string with_value(const std::string& file, const std::string& value) {
  auto text = file;
  text.replace(text.find("%s"), 2, value);
  return text;
}

// What each row's three loads give: the file's value alone, the variable over the file, the
// flag over the variable.
void check_row(const setting_row& row) {
  INFO(row.key << " / " << row.variable << " / " << row.flag);
  const bool text = !row.in_file.empty() && row.in_file.front() != '[' &&
                    row.in_file.find_first_not_of("0123456789") != std::string::npos;
  config_file f(with_value(row.file, text ? "\"" + row.in_file + "\"" : row.in_file));
  std::vector<std::string_view> args{"--config", f.path};
  for (const auto& a : row.also)
    args.push_back(a);
  CHECK(row.read(load(args)) == row.in_file);
  CHECK(row.read(load(args, {{row.variable, row.in_env}})) == row.in_env);
  if (row.flag.empty())
    return;
  args.push_back(row.flag);
  args.push_back(row.in_flag);
  CHECK(row.read(load(args, {{row.variable, row.in_env}})) == row.in_flag);
}

} // namespace

TEST_CASE("every flag and TOKENGATE_ variable of the README's table sets its own setting, the "
          "variable over the file and the flag over the variable",
          "[config]") {
  const auto path = [](auto member) {
    return [member](const config& c) { return (c.*member).string(); };
  };
  const auto ms = [](auto member) {
    return [member](const config& c) { return std::to_string((c.limits.*member).count()); };
  };
  const auto count = [](auto member) {
    return [member](const config& c) { return std::to_string(c.limits.*member); };
  };
  const std::vector<setting_row> rows{
      {"listen",
       "--listen",
       "TOKENGATE_LISTEN",
       R"({"listen": %s})",
       "127.0.0.1:7001",
       "127.0.0.1:7002",
       "127.0.0.1:7003",
       {},
       [](const config& c) { return c.listen.to_string(); }},
      {"admin_listen",
       "--admin-listen",
       "TOKENGATE_ADMIN_LISTEN",
       R"({"admin_listen": %s})",
       "127.0.0.1:7011",
       "127.0.0.1:7012",
       "127.0.0.1:7013",
       {},
       [](const config& c) { return c.admin_listen.to_string(); }},
      {"upstream",
       "--upstream",
       "TOKENGATE_UPSTREAM",
       R"({"upstream": %s})",
       "http://10.0.0.1:81",
       "http://10.0.0.2:82",
       "http://10.0.0.3:83",
       {},
       [](const config& c) { return "http://" + c.upstream.to_string(); }},
      {"data_dir",
       "--data-dir",
       "TOKENGATE_DATA_DIR",
       R"({"data_dir": %s})",
       "/file",
       "/env",
       "/flag",
       {},
       path(&config::data_dir)},
      {"bootstrap_token_file",
       "--bootstrap-token-file",
       "TOKENGATE_BOOTSTRAP_TOKEN_FILE",
       R"({"bootstrap_token_file": %s})",
       "/file/t",
       "/env/t",
       "/flag/t",
       {},
       path(&config::bootstrap_token_file)},
      {"audit_log_file",
       "--audit-log-file",
       "TOKENGATE_AUDIT_LOG_FILE",
       R"({"audit_log_file": %s})",
       "/file/audit",
       "/env/audit",
       "/flag/audit",
       {},
       path(&config::audit_log_file)},
      {"threads",
       "--threads",
       "TOKENGATE_THREADS",
       R"({"threads": %s})",
       "3",
       "4",
       "5",
       {},
       [](const config& c) { return std::to_string(c.threads); }},
      {"log_level",
       "--log-level",
       "TOKENGATE_LOG_LEVEL",
       R"({"log_level": %s})",
       "warn",
       "debug",
       "error",
       {},
       [](const config& c) { return std::string(level_name(c.level)); }},
      {"trusted_proxies",
       "",
       "TOKENGATE_TRUSTED_PROXIES",
       R"({"trusted_proxies": %s})",
       R"(["10.0.0.0/8"])",
       R"(["192.168.0.0/16"])",
       "",
       {},
       [](const config& c) {
         std::string out = "[";
         for (const auto& b : c.trusted_proxies)
           out += (out.size() > 1 ? ",\"" : "\"") + b.to_string() + "\"";
         return out + "]";
       }},
      {"database_url",
       "--database-url",
       "TOKENGATE_DATABASE_URL",
       R"({"database_url": %s})",
       "host=file",
       "host=env",
       "host=flag",
       {},
       [](const config& c) { return c.database_url; }},
      {"database_password_file",
       "--database-password-file",
       "TOKENGATE_DATABASE_PASSWORD_FILE",
       R"({"database_url": "h", "database_password_file": %s})",
       "/file/pw",
       "/env/pw",
       "/flag/pw",
       {},
       path(&config::database_password_file)},
      {"max_staleness_ms",
       "--max-staleness-ms",
       "TOKENGATE_MAX_STALENESS_MS",
       R"({"database_url": "h", "max_staleness_ms": %s})",
       "3000",
       "4000",
       "5000",
       {},
       [](const config& c) {
         return c.max_staleness ? std::to_string(c.max_staleness->count()) : "";
       }},
      {"expiry_warning",
       "--expiry-warning",
       "TOKENGATE_EXPIRY_WARNING",
       R"({"expiry_warning": %s})",
       "60",
       "70",
       "80",
       {},
       [](const config& c) { return std::to_string(c.expiry_warning.count()); }},
      // One limit each: TOKENGATE_<LIMIT> (no flags).
      {"max_header_bytes",
       "",
       "TOKENGATE_MAX_HEADER_BYTES",
       R"({"limits": {"max_header_bytes": %s}})",
       "5001",
       "5002",
       "",
       {},
       count(&limits::max_header_bytes)},
      {"max_admin_body_bytes",
       "",
       "TOKENGATE_MAX_ADMIN_BODY_BYTES",
       R"({"limits": {"max_admin_body_bytes": %s}})",
       "5001",
       "5002",
       "",
       {},
       count(&limits::max_admin_body_bytes)},
      {"header_timeout_ms",
       "",
       "TOKENGATE_HEADER_TIMEOUT_MS",
       R"({"limits": {"header_timeout_ms": %s}})",
       "5001",
       "5002",
       "",
       {},
       ms(&limits::header_timeout)},
      {"idle_timeout_ms",
       "",
       "TOKENGATE_IDLE_TIMEOUT_MS",
       R"({"limits": {"idle_timeout_ms": %s}})",
       "5001",
       "5002",
       "",
       {},
       ms(&limits::idle_timeout)},
      {"upstream_connect_timeout_ms",
       "",
       "TOKENGATE_UPSTREAM_CONNECT_TIMEOUT_MS",
       R"({"limits": {"upstream_connect_timeout_ms": %s}})",
       "5001",
       "5002",
       "",
       {},
       ms(&limits::upstream_connect_timeout)},
      {"upstream_timeout_ms",
       "",
       "TOKENGATE_UPSTREAM_TIMEOUT_MS",
       R"({"limits": {"upstream_timeout_ms": %s}})",
       "5001",
       "5002",
       "",
       {},
       ms(&limits::upstream_timeout)},
      {"upstream_idle_timeout_ms",
       "",
       "TOKENGATE_UPSTREAM_IDLE_TIMEOUT_MS",
       R"({"limits": {"upstream_idle_timeout_ms": %s}})",
       "5001",
       "5002",
       "",
       {},
       ms(&limits::upstream_idle_timeout)},
      {"max_connections",
       "",
       "TOKENGATE_MAX_CONNECTIONS",
       R"({"limits": {"max_connections": %s}})",
       "5001",
       "5002",
       "",
       {},
       count(&limits::max_connections)},
      {"max_tls_handshakes",
       "",
       "TOKENGATE_MAX_TLS_HANDSHAKES",
       R"({"limits": {"max_tls_handshakes": %s}})",
       "5001",
       "5002",
       "",
       {},
       count(&limits::max_tls_handshakes)},
      {"shutdown_timeout_ms",
       "",
       "TOKENGATE_SHUTDOWN_TIMEOUT_MS",
       R"({"limits": {"shutdown_timeout_ms": %s}})",
       "5001",
       "5002",
       "",
       {},
       ms(&limits::shutdown_timeout)},
  };
  for (const auto& row : rows)
    check_row(row);

  // Each key of the tls and admin_tls blocks: TOKENGATE_<BLOCK>_<KEY> and --<block>-<key>.
  for (const std::string block : {"tls", "admin_tls"}) {
    const auto settings = [block](const config& c) { return block == "tls" ? c.tls : c.admin_tls; };
    const auto env = block == "tls" ? std::string("TOKENGATE_TLS_") : "TOKENGATE_ADMIN_TLS_";
    const auto flag = block == "tls" ? std::string("--tls-") : "--admin-tls-";
    const auto pair = R"({")" + block + R"(": {"cert_file": "/c", "key_file": "/k", )";
    const std::vector<setting_row> keys{
        {"cert_file",
         flag + "cert-file",
         env + "CERT_FILE",
         R"({")" + block + R"(": {"key_file": "/k", "cert_file": %s}})",
         "/file.crt",
         "/env.crt",
         "/flag.crt",
         {},
         [settings](const config& c) { return settings(c).cert_file.string(); }},
        {"key_file",
         flag + "key-file",
         env + "KEY_FILE",
         R"({")" + block + R"(": {"cert_file": "/c", "key_file": %s}})",
         "/file.key",
         "/env.key",
         "/flag.key",
         {},
         [settings](const config& c) { return settings(c).key_file.string(); }},
        {"client_ca_file",
         flag + "client-ca-file",
         env + "CLIENT_CA_FILE",
         pair + R"("client_ca_file": %s}})",
         "/file-ca",
         "/env-ca",
         "/flag-ca",
         {},
         [settings](const config& c) { return settings(c).client_ca_file.string(); }},
        {"min_version",
         flag + "min-version",
         env + "MIN_VERSION",
         pair + R"("min_version": %s}})",
         "1.3",
         "1.2",
         "1.3",
         {},
         [settings](const config& c) { return settings(c).tls13_only ? "1.3" : "1.2"; }},
        {"ciphers",
         flag + "ciphers",
         env + "CIPHERS",
         pair + R"("ciphers": %s}})",
         "ECDHE-RSA-AES128-GCM-SHA256",
         "ECDHE-RSA-AES256-GCM-SHA384",
         "ECDHE-RSA-CHACHA20-POLY1305",
         {},
         [settings](const config& c) { return settings(c).ciphers; }},
    };
    for (const auto& row : keys)
      check_row(row);
  }

  // The upstream_tls block's keys, with an https:// upstream.
  const std::vector<std::string> https{"--upstream", "https://app.internal"};
  const std::vector<setting_row> upstream_keys{
      {"ca_file", "--upstream-tls-ca-file", "TOKENGATE_UPSTREAM_TLS_CA_FILE",
       R"({"upstream_tls": {"ca_file": %s}})", "/file-ca", "/env-ca", "/flag-ca", https,
       [](const config& c) { return c.upstream_tls.ca_file.string(); }},
      {"cert_file", "--upstream-tls-cert-file", "TOKENGATE_UPSTREAM_TLS_CERT_FILE",
       R"({"upstream_tls": {"key_file": "/k", "cert_file": %s}})", "/file.crt", "/env.crt",
       "/flag.crt", https, [](const config& c) { return c.upstream_tls.cert_file.string(); }},
      {"key_file", "--upstream-tls-key-file", "TOKENGATE_UPSTREAM_TLS_KEY_FILE",
       R"({"upstream_tls": {"cert_file": "/c", "key_file": %s}})", "/file.key", "/env.key",
       "/flag.key", https, [](const config& c) { return c.upstream_tls.key_file.string(); }},
  };
  for (const auto& row : upstream_keys)
    check_row(row);

  // The block variables (JSON) over the file, key by key.
  config_file f(R"({"upstream_tls": {"ca_file": "/file-ca"},
                    "admin_tls": {"cert_file": "/file.crt", "key_file": "/file.key"}})");
  const auto c = load({"--config", f.path, "--upstream", "https://app.internal"},
                      {{"TOKENGATE_UPSTREAM_TLS", R"({"ca_file": "/env-ca"})"},
                       {"TOKENGATE_ADMIN_TLS",
                        R"({"key_file": "/env.key", "ciphers": "ECDHE-RSA-AES128-GCM-SHA256"})"}});
  CHECK(c.upstream_tls.ca_file == "/env-ca");
  CHECK(c.admin_tls.cert_file == "/file.crt");
  CHECK(c.admin_tls.key_file == "/env.key");
  CHECK(c.admin_tls.ciphers == "ECDHE-RSA-AES128-GCM-SHA256");
}

TEST_CASE("listen addresses and upstream URLs", "[config]") {
  CHECK(load({"--listen", "localhost:1234"}).listen == endpoint{"127.0.0.1", 1234});
  CHECK(load({"--listen", "[::]:0"}).listen == endpoint{"::", 0});
  CHECK(load({"--upstream", "http://127.0.0.1:8081/"}).upstream == endpoint{"127.0.0.1", 8081});
  CHECK(load({"--upstream", "http://[::1]:9"}).upstream == endpoint{"::1", 9});
  CHECK(load({"--upstream", "http://backend"}).upstream == endpoint{"backend", 80});
  CHECK(endpoint{"::1", 80}.to_string() == "[::1]:80");
  CHECK(endpoint{"10.0.0.1", 80}.to_string() == "10.0.0.1:80");

  CHECK_FALSE(parse_listen_address("127.0.0.1").has_value());
  CHECK_FALSE(parse_listen_address("::1:80").has_value());
  CHECK_FALSE(parse_listen_address("example.com:80").has_value());
  CHECK_FALSE(parse_listen_address("127.0.0.1:65536").has_value());
  CHECK_FALSE(parse_listen_address("127.0.0.1:-1").has_value());
  CHECK_FALSE(parse_listen_address("127.0.0.1:http").has_value());
}

TEST_CASE("bootstrap_token_file defaults to admin-token in data_dir", "[config]") {
  CHECK(load({"--data-dir", "/var/lib/tg"}).bootstrap_token_file ==
        std::filesystem::path("/var/lib/tg") / "admin-token");
  CHECK(load({}, {{"TOKENGATE_DATA_DIR", "/env/dir"}}).bootstrap_token_file ==
        std::filesystem::path("/env/dir") / "admin-token");
  CHECK(load({"--data-dir", "/var/lib/tg", "--bootstrap-token-file", "/elsewhere/t"})
            .bootstrap_token_file == "/elsewhere/t");
  config_file f(R"({"bootstrap_token_file": "/from/file"})");
  CHECK(load({"--config", f.path, "--data-dir", "/d"}).bootstrap_token_file == "/from/file");
}

TEST_CASE("routes and the default route", "[config][routes]") {
  config_file f(R"({
    "routes": [
      {"prefix": "/public", "auth": "none"},
      {"prefix": "/alerts/", "methods": ["GET", "HEAD"], "permissions": ["AlertRead"]},
      {"prefix": "//alerts/./x/..", "permissions": ["AlertModify", "AlertRead"]},
      {"prefix": "/", "permissions": []}
    ],
    "default_route": {"permissions": ["UserRead"]}
  })");
  const auto c = load({"--config", f.path});
  REQUIRE(c.routes.size() == 4);
  CHECK(c.routes[0] == route{"/public", {}, true, {}});
  CHECK(c.routes[1] == route{"/alerts", {"GET", "HEAD"}, false, perms({permission::AlertRead})});
  CHECK(c.routes[2] ==
        route{"/alerts", {}, false, perms({permission::AlertModify, permission::AlertRead})});
  CHECK(c.routes[3] == route{"/", {}, false, {}});
  REQUIRE(c.default_route.has_value());
  CHECK(c.default_route->prefix == "/");
  CHECK(c.default_route->permissions == perms({permission::UserRead}));

  config_file deny(R"({"default_route": null})");
  CHECK_FALSE(load({"--config", deny.path}).default_route.has_value());
  CHECK_FALSE(load({}, {{"TOKENGATE_DEFAULT_ROUTE", "null"}}).default_route.has_value());

  const auto from_env = load({}, {{"TOKENGATE_ROUTES", R"([{"prefix": "/x", "auth": "none"}])"}});
  REQUIRE(from_env.routes.size() == 1);
  CHECK(from_env.routes[0].open);
}

TEST_CASE("trusted proxies from a file, a comma list or a JSON array", "[config]") {
  const auto v4 = *tokenapi::cidr_block::parse("10.0.0.0/8");
  const auto host = *tokenapi::cidr_block::parse("192.168.1.1");
  const auto v6 = *tokenapi::cidr_block::parse("fd00::/8");

  CHECK(load({}, {{"TOKENGATE_TRUSTED_PROXIES", "10.0.0.0/8,192.168.1.1"}}).trusted_proxies ==
        std::vector{v4, host});
  CHECK(load({}, {{"TOKENGATE_TRUSTED_PROXIES", "10.0.0.0/8, 192.168.1.1"}}).trusted_proxies ==
        std::vector{v4, host});
  CHECK(
      load({}, {{"TOKENGATE_TRUSTED_PROXIES", R"(["10.0.0.0/8", "fd00::/8"])"}}).trusted_proxies ==
      std::vector{v4, v6});
  CHECK(load({}, {{"TOKENGATE_TRUSTED_PROXIES", ""}}).trusted_proxies.empty());
  config_file f(R"({"trusted_proxies": ["fd00::/8"]})");
  CHECK(load({"--config", f.path}).trusted_proxies == std::vector{v6});
  CHECK(load({"--config", f.path}, {{"TOKENGATE_TRUSTED_PROXIES", "10.0.0.0/8"}}).trusted_proxies ==
        std::vector{v4});

  const auto bad = error_of({}, {{"TOKENGATE_TRUSTED_PROXIES", "10.0.0.0/8,nonsense"}});
  CHECK_THAT(bad, Contains("trusted_proxies") && Contains("nonsense") &&
                      Contains("(from TOKENGATE_TRUSTED_PROXIES)"));
}

TEST_CASE("limits merge key by key, a TOKENGATE_<LIMIT> overriding only its own", "[config]") {
  config_file f(R"({"limits": {"max_header_bytes": 8192, "idle_timeout_ms": 5000}})");
  const auto file_only = load({"--config", f.path});
  CHECK(file_only.limits.max_header_bytes == 8192);
  CHECK(file_only.limits.idle_timeout == 5000ms);
  CHECK(file_only.limits.header_timeout == 10000ms);

  const auto c = load({"--config", f.path}, {{"TOKENGATE_MAX_HEADER_BYTES", "4096"}});
  CHECK(c.limits.max_header_bytes == 4096);
  CHECK(c.limits.idle_timeout == 5000ms);
  CHECK(c.limits.max_admin_body_bytes == 65536);
  CHECK(c.limits.header_timeout == 10000ms);
  CHECK(c.limits.upstream_connect_timeout == 2000ms);
  CHECK(c.limits.upstream_timeout == 30000ms);
  CHECK(c.limits.max_connections == 10000);

  const auto env_only = load({}, {{"TOKENGATE_UPSTREAM_TIMEOUT_MS", "1234"},
                                  {"TOKENGATE_MAX_CONNECTIONS", "7"},
                                  {"TOKENGATE_UPSTREAM_IDLE_TIMEOUT_MS", "4000"}});
  CHECK(env_only.limits.upstream_timeout == 1234ms);
  CHECK(env_only.limits.upstream_idle_timeout == 4000ms);
  CHECK(env_only.limits.max_connections == 7);
  CHECK(env_only.limits.max_header_bytes == 16384);
}

TEST_CASE("a configuration with every key of the README loads", "[config]") {
  config_file f(R"({
  "listen": "127.0.0.1:8080",
  "admin_listen": "127.0.0.1:9901",
  "upstream": "http://127.0.0.1:8081",
  "data_dir": "./data",
  "bootstrap_token_file": "./data/admin-token",
  "threads": 2,
  "trusted_proxies": [],
  "routes": [
    {"prefix": "/public", "auth": "none"},
    {"prefix": "/alerts", "methods": ["GET", "HEAD"], "permissions": ["AlertRead"]},
    {"prefix": "/alerts", "permissions": ["AlertModify"]}
  ],
  "default_route": {"permissions": []},
  "limits": {
    "max_header_bytes": 16384,
    "max_admin_body_bytes": 65536,
    "header_timeout_ms": 10000,
    "idle_timeout_ms": 60000,
    "upstream_connect_timeout_ms": 2000,
    "upstream_timeout_ms": 30000,
    "upstream_idle_timeout_ms": 60000,
    "max_connections": 10000
  }
})");
  const auto c = load({"--config", f.path});
  CHECK(c.routes.size() == 3);
  CHECK(c.routes[0].open);
  REQUIRE(c.default_route.has_value());
  CHECK(c.default_route->permissions.empty());
  CHECK(c.limits.max_connections == 10000);
}

TEST_CASE("the shipped example configs load", "[config]") {
  const auto dir = std::filesystem::path(TOKENGATE_SOURCE_DIR) / "configs";
  REQUIRE(std::filesystem::is_directory(dir));
  std::set<std::string> loaded;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    if (entry.path().extension() != ".json")
      continue;
    INFO("config " << entry.path());
    CHECK_NOTHROW(load({"--config", entry.path().string()}));
    loaded.insert(entry.path().filename().string());
  }
  // The two the README names are among them (and so were loaded).
  CHECK(loaded.count("quickstart.json") == 1);
  CHECK(loaded.count("sidecar.json") == 1);
}

TEST_CASE("limits merge key by key: file, then TOKENGATE_LIMITS, then one variable", "[config]") {
  config_file f(R"({"limits": {"max_header_bytes": 2048, "idle_timeout_ms": 5000,
                               "max_connections": 7}})");
  const auto c = load({"--config", f.path}, {{"TOKENGATE_LIMITS", R"({"idle_timeout_ms": 7000})"},
                                             {"TOKENGATE_UPSTREAM_TIMEOUT_MS", "9000"},
                                             {"TOKENGATE_MAX_CONNECTIONS", "9"}});
  CHECK(c.limits.max_header_bytes == 2048);
  CHECK(c.limits.idle_timeout == 7000ms);
  CHECK(c.limits.upstream_timeout == 9000ms);
  CHECK(c.limits.max_connections == 9);
  CHECK(c.limits.header_timeout == proxy::limits{}.header_timeout);
  // One matcher per check: Catch2 2.x's `a && b` keeps references to the temporaries.
  const auto error = error_of({"--config", f.path}, {{"TOKENGATE_LIMITS", R"({"idle_ms": 1})"}});
  CHECK_THAT(error, Catch::Contains("idle_ms"));
  CHECK_THAT(error, Catch::Contains("(from TOKENGATE_LIMITS)"));
}

TEST_CASE("fleet settings: database_url, database_password_file, max_staleness_ms",
          "[config][fleet]") {
  const auto standalone = load({});
  CHECK(standalone.database_url.empty());
  CHECK(standalone.database_password_file.empty());
  CHECK_FALSE(standalone.max_staleness.has_value());

  config_file f(R"({"database_url": "postgresql://db.internal/tokens",
                    "database_password_file": "/run/secrets/pg", "max_staleness_ms": 30000})");
  const auto from_file = load({"--config", f.path});
  CHECK(from_file.database_url == "postgresql://db.internal/tokens");
  CHECK(from_file.database_password_file == "/run/secrets/pg");
  CHECK(from_file.max_staleness == 30000ms);

  const auto overridden =
      load({"--config", f.path, "--database-url", "host=flag", "--max-staleness-ms", "2000"},
           {{"TOKENGATE_DATABASE_URL", "host=env"}, {"TOKENGATE_DATABASE_PASSWORD_FILE", "/env"}});
  CHECK(overridden.database_url == "host=flag");
  CHECK(overridden.database_password_file == "/env");
  CHECK(overridden.max_staleness == 2000ms);
  CHECK(load({}, {{"TOKENGATE_DATABASE_URL", "host=env"}}).database_url == "host=env");

  // max_staleness_ms from 2000 (twice the poll interval) to a day.
  CHECK(load({"--database-url", "h", "--max-staleness-ms", "86400000"}).max_staleness ==
        86400000ms);
  for (const char* n : {"1999", "0", "86400001", "soon"})
    CHECK_THAT(error_of({"--database-url", "h", "--max-staleness-ms", n}),
               Contains("max_staleness_ms") && Contains("(from --max-staleness-ms)"));
  // Fleet-only settings without a database are a mistake, not silently ignored.
  CHECK_THAT(error_of({"--max-staleness-ms", "5000"}), Contains("need database_url"));
  CHECK_THAT(error_of({}, {{"TOKENGATE_DATABASE_PASSWORD_FILE", "/x"}}),
             Contains("need database_url"));
  // An empty URL is an error that never quotes a value (a URL may hold a password).
  CHECK_THAT(error_of({"--database-url", ""}), Contains("database_url must not be empty"));
  const auto typo = file_error(R"({"database_url": 5})");
  CHECK_THAT(typo, Contains("database_url must be a string"));
}
