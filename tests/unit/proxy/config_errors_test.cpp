// Configuration mistakes: every one is one line naming the setting and where it came from
// (flag, TOKENGATE_* variable or config file), whatever the key or file name.
#include "proxy/config.hpp"

#include "tests/unit/proxy/config_checks.hpp"

#include <catch2/catch.hpp>

#include <string>

using namespace tokengate;
using namespace tokengate::proxy;
using namespace tokengate::proxy::testing;
using Catch::Contains;

TEST_CASE("command-line mistakes are one line naming the flag", "[config][errors]") {
  CHECK_THAT(error_of({"--bogus", "1"}), Contains("--bogus"));
  // An argument that is no option is not echoed: it may be a value (a database URL) without
  // its option.
  CHECK(error_of({"serve"}) == "an argument that is not an --option (not shown: it may hold a "
                               "secret; see tokengate --help)");
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
    CHECK_THAT(error_of({"--upstream", "ftp://127.0.0.1:8081"}),
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
    CHECK_THAT(file_error(R"({"limits": {"upstream_idle_timeout_ms": 0}})"),
               Contains("limits.upstream_idle_timeout_ms"));
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

TEST_CASE("a config error is one line, whatever the key or file name", "[config][fuzz]") {
  // Found by tests/fuzz/config.cpp: a key with a newline made a two-line message.
  const auto message = error_of({}, {{"TOKENGATE_LIMITS", "{\"max\\nbytes\": 1}"}});
  CHECK(message.find('\n') == std::string::npos);
  CHECK_THAT(message, Catch::Contains("\"max\\nbytes\""));
  CHECK(error_of({"--config", "/nonexistent/a\nb.json"}) ==
        "configuration error: cannot read config file /nonexistent/a\\x0ab.json: No such file or "
        "directory");
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
