// Configuration: built-in defaults, a JSON file, TOKENGATE_* variables and flags, in rising
// precedence, and what each setting holds once loaded. Mistakes: config_errors_test.cpp.
#include "proxy/config.hpp"

#include "tests/unit/proxy/config_checks.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
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
