// Configuration: built-in defaults, a JSON file, TOKENGATE_* variables and flags, in rising
// precedence; every mistake is one line naming the setting and where it came from.
#include "proxy/config.hpp"

#include "tests/support/temp_dir.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <fstream>
#include <map>
#include <set>
#include <string>
#include <vector>

using namespace tokengate;
using namespace tokengate::proxy;
using tokenapi::permission;
using namespace std::chrono_literals;

namespace {

// A fake environment.
struct fake_env {
  std::map<std::string, std::string> vars;
  std::vector<std::string> asked;

  env_lookup lookup() {
    return [this](const std::string& name) -> std::optional<std::string> {
      asked.push_back(name);
      auto v = vars.find(name);
      if (v == vars.end())
        return std::nullopt;
      return v->second;
    };
  }
};

// A config file in a temp dir.
struct config_file {
  test::temp_dir dir;
  std::string path;

  explicit config_file(const std::string& text, const std::string& name = "tokengate.json")
      : path((dir / name).string()) {
    std::ofstream(path) << text;
  }
};

config load(const std::vector<std::string_view>& args,
            const std::map<std::string, std::string>& env = {}) {
  fake_env e{env, {}};
  return load_config(args, e.lookup());
}

// The message of the config_error that loading throws; fails the test if nothing is thrown.
std::string error_of(const std::vector<std::string_view>& args,
                     const std::map<std::string, std::string>& env = {}) {
  try {
    (void)load(args, env);
  } catch (const config_error& e) {
    const std::string message = e.what();
    INFO(message);
    CHECK(message.find('\n') == std::string::npos);
    CHECK_FALSE(message.empty());
    return message;
  }
  FAIL("no config_error was thrown");
  return {};
}

std::string file_error(const std::string& json) {
  config_file f(json);
  const auto message = error_of({"--config", f.path});
  CHECK_THAT(message, Catch::Contains("(from config file " + f.path + ")"));
  return message;
}

tokenapi::permission_set perms(std::initializer_list<permission> ps) {
  tokenapi::permission_set s;
  for (auto p : ps)
    s.insert(p);
  return s;
}

using Catch::Contains;

} // namespace

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
  CHECK(c.limits.max_connections == 10000);
  // The config file is looked for in the environment, and every setting too.
  CHECK(std::find(env.asked.begin(), env.asked.end(), "TOKENGATE_CONFIG") != env.asked.end());
  CHECK(std::find(env.asked.begin(), env.asked.end(), "TOKENGATE_UPSTREAM") != env.asked.end());
  CHECK(std::find(env.asked.begin(), env.asked.end(), "TOKENGATE_BOOTSTRAP_TOKEN_FILE") !=
        env.asked.end());
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

  const auto env_only =
      load({}, {{"TOKENGATE_UPSTREAM_TIMEOUT_MS", "1234"}, {"TOKENGATE_MAX_CONNECTIONS", "7"}});
  CHECK(env_only.limits.upstream_timeout == 1234ms);
  CHECK(env_only.limits.max_connections == 7);
  CHECK(env_only.limits.max_header_bytes == 16384);
}

TEST_CASE("command-line mistakes are one line naming the flag", "[config][errors]") {
  CHECK_THAT(error_of({"--bogus", "1"}), Contains("--bogus"));
  CHECK_THAT(error_of({"serve"}), Contains("serve"));
  CHECK_THAT(error_of({"--threads"}), Contains("--threads"));
  CHECK_THAT(error_of({"--listen", "127.0.0.1:1", "--upstream"}), Contains("--upstream"));
  CHECK_THAT(error_of({"--config", "/nonexistent/tokengate.json"}),
             Contains("/nonexistent/tokengate.json"));
}

TEST_CASE("bad values name the setting and their source", "[config][errors]") {
  SECTION("threads") {
    for (const char* n : {"0", "257", "abc", "-1", "2.5", ""}) {
      INFO("threads " << n);
      CHECK_THAT(error_of({"--threads", n}), Contains("threads") && Contains("(from --threads)"));
      if (*n != '\0')
        CHECK_THAT(error_of({}, {{"TOKENGATE_THREADS", n}}),
                   Contains("threads") && Contains("(from TOKENGATE_THREADS)"));
    }
    // A variable set to the empty string counts as unset.
    CHECK(load({}, {{"TOKENGATE_THREADS", ""}}).threads == proxy::config{}.threads);
    CHECK(load({"--threads", "256"}).threads == 256);
    CHECK(load({"--threads", "1"}).threads == 1);
    CHECK_THAT(file_error(R"({"threads": 0})"), Contains("threads"));
    CHECK_THAT(file_error(R"({"threads": 257})"), Contains("threads"));
    CHECK_THAT(file_error(R"({"threads": "abc"})"), Contains("threads"));
    CHECK_THAT(file_error(R"({"threads": 2.5})"), Contains("threads"));
  }
  SECTION("listen addresses") {
    for (const char* a : {"127.0.0.1", "example.com:80", "127.0.0.1:99999", "::1:80", ""}) {
      INFO("listen " << a);
      CHECK_THAT(error_of({"--listen", a}), Contains("listen") && Contains("(from --listen)"));
    }
    CHECK_THAT(error_of({}, {{"TOKENGATE_ADMIN_LISTEN", "nowhere"}}),
               Contains("admin_listen") && Contains("(from TOKENGATE_ADMIN_LISTEN)"));
    CHECK_THAT(file_error(R"({"listen": 8080})"), Contains("listen"));
    CHECK_THAT(error_of({"--listen", "127.0.0.1:9000", "--admin-listen", "127.0.0.1:9000"}),
               Contains("listen") && Contains("admin_listen"));
  }
  SECTION("upstream") {
    CHECK_THAT(error_of({"--upstream", "https://127.0.0.1:8081"}),
               Contains("upstream") && Contains("http://") && Contains("(from --upstream)"));
    for (const char* u : {"http://127.0.0.1:8081/api", "http://127.0.0.1:8081/?x=1",
                          "http://user@127.0.0.1:8081", "127.0.0.1:8081", "http://:80",
                          "http://127.0.0.1:0", "http://127.0.0.1:x", "http://[::1"}) {
      INFO("upstream " << u);
      CHECK_THAT(error_of({}, {{"TOKENGATE_UPSTREAM", u}}),
                 Contains("upstream") && Contains("(from TOKENGATE_UPSTREAM)"));
    }
  }
  SECTION("other text settings") {
    CHECK_THAT(error_of({"--log-level", "verbose"}),
               Contains("log_level") && Contains("(from --log-level)"));
    CHECK_THAT(error_of({"--data-dir", ""}), Contains("data_dir") && Contains("(from --data-dir)"));
  }
}

TEST_CASE("config file mistakes name the key and the file", "[config][errors]") {
  SECTION("an unknown key") {
    config_file f(R"({"listen": "127.0.0.1:8080", "listne": "x"})");
    CHECK_THAT(error_of({"--config", f.path}),
               Contains("\"listne\"") && Contains("config file " + f.path));
  }
  SECTION("invalid JSON, with its line") {
    config_file f(
        "{\n  \"threads\": 2,\n  \"listen\": \"127.0.0.1:8080\",\n  \"routes\": [,]\n}\n");
    CHECK_THAT(error_of({"--config", f.path}),
               Contains("config file " + f.path) && Contains("JSON") && Contains("line 4"));
    config_file unterminated("{\n  \"threads\": 2\n");
    CHECK_THAT(error_of({"--config", unterminated.path}),
               Contains("config file " + unterminated.path) && Contains("JSON"));
  }
  SECTION("not an object") {
    config_file f("[1, 2]");
    CHECK_THAT(error_of({"--config", f.path}), Contains("config file " + f.path));
  }
  SECTION("an unknown permission in a route") {
    CHECK_THAT(file_error(R"({"routes": [{"prefix": "/a", "permissions": ["AlertRaed"]}]})"),
               Contains("routes[0].permissions") && Contains("AlertRaed"));
  }
  SECTION("a route without a prefix") {
    CHECK_THAT(file_error(R"({"routes": [{"prefix": "/a"}, {"permissions": []}]})"),
               Contains("routes[1]") && Contains("prefix"));
  }
  SECTION("a bad prefix") {
    CHECK_THAT(file_error(R"({"routes": [{"prefix": "alerts"}]})"), Contains("routes[0].prefix"));
    CHECK_THAT(file_error(R"({"routes": [{"prefix": "/a%2Fb"}]})"), Contains("routes[0].prefix"));
    CHECK_THAT(file_error(R"({"routes": [{"prefix": "/a?x=1"}]})"), Contains("routes[0].prefix"));
  }
  SECTION("an open route with permissions") {
    CHECK_THAT(
        file_error(
            R"({"routes": [{"prefix": "/a", "auth": "none", "permissions": ["AlertRead"]}]})"),
        Contains("routes[0]") && Contains("auth"));
    CHECK_THAT(file_error(R"({"routes": [{"prefix": "/a", "auth": "token"}]})"),
               Contains("routes[0].auth"));
  }
  SECTION("a lowercase or empty method") {
    CHECK_THAT(file_error(R"({"routes": [{"prefix": "/a", "methods": ["get"]}]})"),
               Contains("routes[0].methods"));
    CHECK_THAT(file_error(R"({"routes": [{"prefix": "/a", "methods": []}]})"),
               Contains("routes[0].methods"));
  }
  SECTION("an unknown route key") {
    CHECK_THAT(file_error(R"({"routes": [{"prefix": "/a", "permission": ["AlertRead"]}]})"),
               Contains("routes[0]") && Contains("\"permission\""));
    CHECK_THAT(file_error(R"({"default_route": {"prefix": "/a"}})"),
               Contains("default_route") && Contains("\"prefix\""));
  }
  SECTION("an unknown limit") {
    CHECK_THAT(file_error(R"({"limits": {"max_header_byte": 8192}})"),
               Contains("limits") && Contains("\"max_header_byte\""));
  }
  SECTION("a limit out of range") {
    CHECK_THAT(file_error(R"({"limits": {"max_header_bytes": 10}})"),
               Contains("limits.max_header_bytes"));
    CHECK_THAT(file_error(R"({"limits": {"idle_timeout_ms": 0}})"),
               Contains("limits.idle_timeout_ms"));
    CHECK_THAT(file_error(R"({"limits": {"max_connections": -5}})"),
               Contains("limits.max_connections"));
    CHECK_THAT(file_error(R"({"limits": {"upstream_timeout_ms": "fast"}})"),
               Contains("limits.upstream_timeout_ms"));
    CHECK_THAT(file_error(R"({"limits": {"max_admin_body_bytes": 18446744073709551615}})"),
               Contains("limits.max_admin_body_bytes"));
    CHECK_THAT(error_of({}, {{"TOKENGATE_MAX_HEADER_BYTES", "0"}}),
               Contains("limits.max_header_bytes") &&
                   Contains("(from TOKENGATE_MAX_HEADER_BYTES)"));
    CHECK_THAT(error_of({}, {{"TOKENGATE_IDLE_TIMEOUT_MS", "soon"}}),
               Contains("limits.idle_timeout_ms") && Contains("(from TOKENGATE_IDLE_TIMEOUT_MS)"));
  }
  SECTION("a document setting of the wrong type") {
    CHECK_THAT(file_error(R"({"routes": {"prefix": "/a"}})"), Contains("routes"));
    CHECK_THAT(file_error(R"({"trusted_proxies": "10.0.0.0/8"})"), Contains("trusted_proxies"));
    CHECK_THAT(file_error(R"({"limits": [1]})"), Contains("limits"));
    CHECK_THAT(error_of({}, {{"TOKENGATE_ROUTES", "[{"}}),
               Contains("TOKENGATE_ROUTES") && Contains("JSON"));
  }
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

TEST_CASE("a config error is one line, whatever the key or file name", "[config][fuzz]") {
  // Found by tests/fuzz/config.cpp: a key with a newline made a two-line message.
  const auto message = error_of({}, {{"TOKENGATE_LIMITS", "{\"max\\nbytes\": 1}"}});
  CHECK(message.find('\n') == std::string::npos);
  CHECK_THAT(message, Catch::Contains("\"max\\nbytes\""));
  CHECK(error_of({"--config", "/nonexistent/a\nb.json"}) ==
        "configuration error: cannot read config file /nonexistent/a\\x0ab.json");
}

TEST_CASE("a key given twice in a config file or variable is an error", "[config][spelling]") {
  config_file file(R"({"threads": 4, "threads": 1})");
  CHECK(error_of({"--config", file.path}) ==
        "configuration error: config file " + file.path + " has a duplicate key \"threads\"");
  CHECK(error_of({}, {{"TOKENGATE_LIMITS", R"({"max_connections": 5, "max_connections": 9})"}}) ==
        "configuration error: TOKENGATE_LIMITS has a duplicate key \"max_connections\"");
  config_file nested(R"({"routes": [{"prefix": "/a", "auth": "none", "prefix": "/"}]})");
  CHECK_THAT(error_of({"--config", nested.path}), Catch::EndsWith("duplicate key \"prefix\""));
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
