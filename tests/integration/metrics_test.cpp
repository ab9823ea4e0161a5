// GET /metrics on the admin listener (README "Metrics"): every figure moves by exactly the traffic
// sent, no label carries a key, a token id or a path, and a real Prometheus parser
// (python3-prometheus-client) reads both exposition formats.
#include "tests/integration/proxy_fixture.hpp"
#include "tests/support/temp_dir.hpp"
#include "tokenapi/rfc3339.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <thread>
#include <vector>

using namespace tokengate;
using namespace std::chrono_literals;
using test::proxy_fixture;

namespace {

/// Samples by their full name with labels, e.g. tokengate_auth_decisions_total{outcome="allowed"}.
using samples = std::map<std::string, double>;

samples parse(const std::string& text) {
  samples out;
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);) {
    if (line.empty() || line.front() == '#')
      continue;
    const auto space = line.rfind(' ');
    REQUIRE(space != std::string::npos);
    out[line.substr(0, space)] = std::stod(line.substr(space + 1));
  }
  return out;
}

struct metrics_fixture : proxy_fixture {
  explicit metrics_fixture(proxy::config c = test::example_routes())
      : proxy_fixture(std::move(c)) {}

  test::http_response scrape(const test::header_list& headers = {}) {
    return test::request(gate.admin_port(), "GET", "/metrics", headers);
  }
  samples now() {
    auto r = scrape();
    REQUIRE(r.status == 200);
    return parse(r.body);
  }
  /// Scrapes until every figure named has moved by its delta from `before`, then returns the
  /// scrape. A request is counted just after its answer is written, so the client can read one
  /// answer, and even send the next request, before the first is counted: a test waits for each
  /// figure it checks, not only for the one the last request moves.
  samples after(const samples& before, const std::vector<std::pair<std::string, double>>& moves) {
    const auto reached = [&](const samples& s) {
      return std::all_of(moves.begin(), moves.end(), [&](const auto& m) {
        const auto was = before.count(m.first) ? before.at(m.first) : 0;
        return s.count(m.first) && s.at(m.first) - was >= m.second;
      });
    };
    samples s;
    for (int i = 0; i < 200; ++i) {
      s = now();
      if (reached(s))
        break;
      std::this_thread::sleep_for(10ms);
    }
    return s;
  }
  samples after(const samples& before, const std::string& name, double delta) {
    return after(before, {{name, delta}});
  }
};

double moved(const samples& before, const samples& after, const std::string& name) {
  INFO(name);
  REQUIRE(after.count(name) == 1);
  return after.at(name) - (before.count(name) ? before.at(name) : 0);
}

} // namespace

TEST_CASE_METHOD(metrics_fixture, "each figure moves by exactly the traffic sent", "[metrics]") {
  auto reader = gate.create_token("reader", {"AlertRead"});
  const auto created = R"(tokengate_api_requests_total{operation="create",code="2xx"})";
  const auto before = after({{created, 0}}, created, 1); // the creation is counted

  for (int i = 0; i < 3; ++i)
    REQUIRE(get_with(reader.value, "/alerts/7").status == 200);
  REQUIRE(get_with("tg_malformed", "/alerts/7").status == 401);
  REQUIRE(get_with("tg_malformed", "/alerts/8").status == 401);
  REQUIRE(get("/alerts/7").status == 401);
  REQUIRE(test::request(gate.port(), "DELETE", "/alerts/7", {{"X-API-Key", reader.value}}).status ==
          403);
  REQUIRE(get("/public/x").status == 200); // an open route: no decision
  REQUIRE(
      test::request(gate.port(), "GET", "/api-tokens", {{"X-API-Key", gate.admin_key()}}).status ==
      200);
  REQUIRE(test::request(gate.port(), "GET", "/api-tokens/self", {}).status == 401);

  const auto requests_2xx = R"(tokengate_http_requests_total{listener="main",code="2xx"})";
  const auto requests_4xx = R"(tokengate_http_requests_total{listener="main",code="4xx"})";
  const auto durations = R"(tokengate_http_request_duration_seconds_count{listener="main"})";
  const auto s = after(before, {{requests_2xx, 5}, {requests_4xx, 5}, {durations, 10}});
  CHECK(moved(before, s, requests_2xx) == 5);
  CHECK(moved(before, s, requests_4xx) == 5);
  // The token API's keys are decided too: the admin's list allowed, the keyless self a 401.
  CHECK(moved(before, s, R"(tokengate_auth_decisions_total{outcome="allowed"})") == 4);
  CHECK(moved(before, s, R"(tokengate_auth_decisions_total{outcome="malformed_key"})") == 2);
  CHECK(moved(before, s, R"(tokengate_auth_decisions_total{outcome="missing_key"})") == 2);
  CHECK(moved(before, s, R"(tokengate_auth_decisions_total{outcome="permission_denied"})") == 1);
  CHECK(moved(before, s, R"(tokengate_api_requests_total{operation="list",code="2xx"})") == 1);
  CHECK(moved(before, s, R"(tokengate_api_requests_total{operation="get",code="4xx"})") == 1);
  CHECK(moved(before, s, "tokengate_upstream_request_duration_seconds_count") == 4);
  CHECK(moved(before, s, R"(tokengate_upstream_connections_total{kind="new"})") +
            moved(before, s, R"(tokengate_upstream_connections_total{kind="reused"})") ==
        4);
  CHECK(moved(before, s, durations) == 10);
  CHECK(s.at("tokengate_tokens") == 2); // the bootstrap token and the reader
  CHECK(s.at(R"(tokengate_connections_open{listener="admin"})") >= 1);
  CHECK(s.at(R"(tokengate_build_info{version="0.1.0"})") == 1);
  CHECK(s.at("tokengate_log_lines_dropped_total") == 0); // the log file takes every line
  CHECK(s.at("process_resident_memory_bytes") > 0);
}

TEST_CASE_METHOD(metrics_fixture, "upstream failures are counted by reason", "[metrics]") {
  auto reader = gate.create_token("reader", {"AlertRead"});
  const auto before = now();
  REQUIRE(get_with(reader.value, "/alerts/hang-up").status == 502);
  const auto reset = R"(tokengate_upstream_errors_total{reason="reset"})";
  // The answer's own count comes last, once it is written.
  const auto s = after(before, R"(tokengate_http_requests_total{listener="main",code="5xx"})", 1);
  CHECK(moved(before, s, reset) == 1);
  CHECK(moved(before, s, R"(tokengate_upstream_errors_total{reason="timeout"})") == 0);
  CHECK(moved(before, s, R"(tokengate_http_requests_total{listener="main",code="5xx"})") == 1);
}

TEST_CASE("upstream failures of every reason are counted under it", "[metrics]") {
  auto settings = test::example_routes();
  settings.limits.upstream_timeout = 300ms;
  settings.limits.upstream_connect_timeout = 300ms;
  metrics_fixture f(settings);
  const auto errors = [](std::string_view reason) {
    return R"(tokengate_upstream_errors_total{reason=")" + std::string(reason) + R"("})";
  };
  const auto failed = R"(tokengate_http_requests_total{listener="main",code="5xx"})";
  auto before = f.now();
  REQUIRE(f.get("/public/slow?ms=1000").status == 504);
  auto s = f.after(before, failed, 1);
  CHECK(moved(before, s, errors("timeout")) == 1);
  CHECK(moved(before, s, errors("bad_response")) == 0);

  before = s;
  REQUIRE(f.get("/public/switch").status == 502);
  REQUIRE(f.get("/public/bad-chunk").status == 502); // the broken chunk came with the head
  s = f.after(before, errors("bad_response"), 2);
  CHECK(moved(before, s, errors("bad_response")) == 2);
  CHECK(moved(before, s, errors("timeout")) == 0);
  CHECK(moved(before, s, errors("connect")) == 0);

  // A sidecar in front of an upstream that never completes a connection.
  test::black_hole hole;
  test::sidecar gate(hole.port(), settings);
  const auto scrape = [&] {
    auto r = test::request(gate.admin_port(), "GET", "/metrics");
    REQUIRE(r.status == 200);
    return parse(r.body);
  };
  REQUIRE(test::request(gate.port(), "GET", "/public/x").status == 502);
  s = scrape();
  for (int i = 0; i < 200 && s[failed] < 1; ++i) {
    std::this_thread::sleep_for(10ms);
    s = scrape();
  }
  CHECK(s.at(errors("connect")) == 1);
  CHECK(s.at(errors("timeout")) == 0);
}

TEST_CASE_METHOD(metrics_fixture, "no label holds a key, a token id or a path", "[metrics]") {
  auto reader = gate.create_token("reader", {"AlertRead"});
  REQUIRE(get_with(reader.value, "/alerts/secret-path").status == 200);
  const auto text = scrape().body;
  for (const auto& secret : {reader.value, reader.id, gate.admin_key(), std::string("/alerts"),
                             std::string("secret-path")}) {
    INFO(secret);
    CHECK(text.find(secret) == std::string::npos);
  }
  const std::regex label(R"re((\w+)="([^"]*)")re");
  for (auto it = std::sregex_iterator(text.begin(), text.end(), label);
       it != std::sregex_iterator(); ++it) {
    const auto name = (*it)[1].str();
    INFO(name << "=" << (*it)[2].str());
    CHECK((name == "listener" || name == "code" || name == "outcome" || name == "reason" ||
           name == "kind" || name == "operation" || name == "result" || name == "version" ||
           name == "le"));
  }
}

TEST_CASE_METHOD(metrics_fixture,
                 "request durations are counted in buckets from 100 microseconds to 10 seconds "
                 "on each listener",
                 "[metrics]") {
  // README "Metrics": tokengate_http_request_duration_seconds, "histogram, 100 µs to 10 s".
  REQUIRE(get("/public/x").status == 200);
  const auto main_count = R"(tokengate_http_request_duration_seconds_count{listener="main"})";
  const auto admin_count = R"(tokengate_http_request_duration_seconds_count{listener="admin"})";
  after({{main_count, 0}}, main_count, 1);
  const auto s = after({{admin_count, 0}}, admin_count, 1); // a scrape before this one
  for (const std::string listener : {"main", "admin"}) {
    INFO("listener " << listener);
    const auto prefix =
        R"(tokengate_http_request_duration_seconds_bucket{listener=")" + listener + R"(",le=")";
    std::vector<double> bounds;
    double infinite = -1;
    for (const auto& [name, value] : s) {
      if (!name.starts_with(prefix))
        continue;
      const auto le = name.substr(prefix.size(), name.size() - prefix.size() - 2); // "}
      REQUIRE(name.ends_with("\"}"));
      if (le == "+Inf")
        infinite = value;
      else
        bounds.push_back(std::stod(le));
    }
    std::sort(bounds.begin(), bounds.end());
    REQUIRE(bounds.size() >= 2);
    CHECK(bounds.front() == Approx(0.0001).epsilon(1e-9)); // 100 µs
    CHECK(bounds.back() == 10);
    CHECK(infinite >= 1); // every observation, past 10 s too, is in +Inf
    CHECK(infinite ==
          s.at(R"(tokengate_http_request_duration_seconds_count{listener=")" + listener + "\"}"));
  }
}

TEST_CASE_METHOD(metrics_fixture, "a real Prometheus parser reads both formats", "[metrics]") {
  REQUIRE(get("/public/x").status == 200);
  const auto text = scrape();
  CHECK(text.header("Content-Type") == "text/plain; version=0.0.4; charset=utf-8");
  const auto open = scrape({{"Accept", "application/openmetrics-text; version=1.0.0"}});
  CHECK(open.header("Content-Type") ==
        "application/openmetrics-text; version=1.0.0; charset=utf-8");
  CHECK(open.body.ends_with("# EOF\n"));

  test::temp_dir dir;
  std::ofstream(dir / "metrics.txt") << text.body;
  std::ofstream(dir / "metrics.om") << open.body;
  const auto script = (dir / "check.py").string();
  std::ofstream(script) << R"(import sys
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.openmetrics.parser import text_string_to_metric_families as om
plain = list(text_string_to_metric_families(open(sys.argv[1]).read()))
opened = list(om(open(sys.argv[2]).read()))
names = {f.name for f in plain}
assert "tokengate_http_requests" in names or "tokengate_http_requests_total" in names, names
assert any(f.name == "tokengate_http_request_duration_seconds" and f.type == "histogram" for f in opened)
assert len(plain) == len(opened), (len(plain), len(opened))
)";
  // Debian's interpreter, where python3-prometheus-client is installed (./dev deps).
  const auto command = "/usr/bin/python3 " + script + " " + (dir / "metrics.txt").string() + " " +
                       (dir / "metrics.om").string();
  CHECK(std::system(command.c_str()) == 0);
}

TEST_CASE_METHOD(metrics_fixture, "/metrics takes GET and HEAD only", "[metrics]") {
  auto post = test::request(gate.admin_port(), "POST", "/metrics", {}, "x");
  CHECK(post.status == 405);
  CHECK(post.header("Allow") == "GET, HEAD");
  // The main listener never serves the figures.
  CHECK(test::request(gate.port(), "GET", "/metrics", {{"X-API-Key", gate.admin_key()}})
            .body.find("tokengate_") == std::string::npos);
}

TEST_CASE_METHOD(metrics_fixture, "the admin listener serves the OpenAPI document", "[admin]") {
  auto r = test::request(gate.admin_port(), "GET", "/openapi.yaml");
  CHECK(r.status == 200);
  CHECK(r.header("Content-Type") == "application/yaml");
  CHECK(r.body.starts_with("openapi: 3."));
  CHECK(r.body.find("/api-tokens/{id}/rotate") != std::string::npos);
  CHECK(test::request(gate.admin_port(), "DELETE", "/openapi.yaml").status == 405);
}

namespace {

/// A series' labels without `le`, sorted by name, e.g. `code="2xx",listener="main"`, by the
/// family's name (a histogram's _bucket, _count and _sum under the histogram's).
std::map<std::string, std::set<std::string>> series_by_family(const samples& s) {
  std::map<std::string, std::set<std::string>> out;
  const std::regex label(R"re((\w+)="([^"]*)")re");
  for (const auto& [name, value] : s) {
    (void)value;
    const auto brace = name.find('{');
    auto family = name.substr(0, brace);
    for (const std::string suffix : {"_bucket", "_count", "_sum"})
      if (family.ends_with(suffix) && family.starts_with("tokengate_") &&
          family.find("duration_seconds") != std::string::npos)
        family.resize(family.size() - suffix.size());
    std::map<std::string, std::string> labels;
    if (brace != std::string::npos)
      for (auto it = std::sregex_iterator(name.begin() + brace, name.end(), label);
           it != std::sregex_iterator(); ++it)
        if ((*it)[1].str() != "le")
          labels[(*it)[1].str()] = (*it)[2].str();
    std::string text;
    for (const auto& [n, v] : labels)
      text += (text.empty() ? "" : ",") + n + "=\"" + v + "\"";
    out[family].insert(text);
  }
  return out;
}

/// Every combination of the values of each label (sorted by name as series_by_family writes
/// them).
std::set<std::string> combinations(const std::map<std::string, std::vector<std::string>>& values) {
  std::set<std::string> out{""};
  for (const auto& [name, list] : values) {
    std::set<std::string> next;
    for (const auto& prefix : out)
      for (const auto& v : list)
        next.insert(prefix + (prefix.empty() ? "" : ",") + name + "=\"" + v + "\"");
    out = std::move(next);
  }
  return out;
}

} // namespace

TEST_CASE_METHOD(metrics_fixture,
                 "each metric carries exactly the label names and values README \"Metrics\" "
                 "lists",
                 "[metrics]") {
  const std::vector<std::string> classes{"1xx", "2xx", "3xx", "4xx", "5xx"};
  const std::vector<std::string> listeners{"main", "admin"};
  using labels = std::map<std::string, std::vector<std::string>>;
  // The README's table, without TLS (tokengate_tls_certificate_expiry_seconds: only with TLS).
  const std::map<std::string, labels> documented{
      {"tokengate_http_requests_total", {{"listener", listeners}, {"code", classes}}},
      {"tokengate_http_request_duration_seconds", {{"listener", listeners}}},
      {"tokengate_auth_decisions_total",
       {{"outcome",
         {"allowed", "missing_key", "malformed_key", "unknown_key", "expired", "address_denied",
          "permission_denied", "stale", "no_route"}}}},
      {"tokengate_upstream_request_duration_seconds", {}},
      {"tokengate_upstream_errors_total",
       {{"reason", {"connect", "timeout", "reset", "bad_response"}}}},
      {"tokengate_upstream_connections_total", {{"kind", {"reused", "new"}}}},
      {"tokengate_upstream_connections_open", {}},
      {"tokengate_connections_open", {{"listener", listeners}}},
      {"tokengate_connections_refused_total", {}},
      {"tokengate_api_requests_total",
       {{"operation", {"list", "create", "get", "update", "delete", "rotate", "unknown"}},
        {"code", classes}}},
      {"tokengate_tokens", {}},
      {"tokengate_tokens_expiring", {}},
      {"tokengate_rate_limited_total", {}},
      {"tokengate_would_deny_total",
       {{"reason", {"address_denied", "permission_denied", "rate_limited"}}}},
      // README "Metrics" (and "Live reload"): result="success" and result="failure".
      {"tokengate_config_reloads_total", {{"result", {"success", "failure"}}}},
      {"tokengate_log_lines_dropped_total", {}},
      {"tokengate_build_info", {{"version", {"0.1.0"}}}},
      {"process_cpu_seconds_total", {}},
      {"process_resident_memory_bytes", {}},
      {"process_start_time_seconds", {}},
  };
  const auto seen = series_by_family(now());
  std::set<std::string> families;
  for (const auto& [family, series] : seen)
    families.insert(family);
  std::set<std::string> listed;
  for (const auto& [family, values] : documented)
    listed.insert(family);
  CHECK(families == listed);
  for (const auto& [family, values] : documented) {
    INFO(family);
    const auto it = seen.find(family);
    REQUIRE(it != seen.end());
    CHECK(it->second == combinations(values));
  }
}

TEST_CASE("every outcome, operation and listener value is counted under its own label",
          "[metrics]") {
  auto settings = test::example_routes();
  settings.default_route = std::nullopt; // a path no route matches: outcome no_route
  metrics_fixture f(settings);
  const auto admin = f.gate.admin_key();
  const auto reader = f.gate.create_token("reader", {"AlertRead"});
  const auto fenced = f.gate.create_token("fenced", {"AlertRead"}, {"192.0.2.0/24"});
  const auto gone = f.gate.create_token("gone", {"AlertRead"});
  REQUIRE(test::request(f.gate.port(), "DELETE", "/api-tokens/" + gone.id, {{"X-API-Key", admin}})
              .status == 204);
  // A key that expires at the next whole second but one: polled until it has.
  const auto expiry = tokenapi::format_rfc3339(
      std::chrono::floor<std::chrono::seconds>(std::chrono::system_clock::now()) + 2s);
  auto made = test::request(f.gate.port(), "POST", "/api-tokens", {{"X-API-Key", admin}},
                            R"({"name":"short","permissions":["AlertRead"],"expiresAt":")" +
                                expiry + "\"}");
  REQUIRE(made.status == 200);
  const std::string expiring(made.json().at("value").as_string());
  const auto deadline = std::chrono::steady_clock::now() + 20s;
  while (f.get_with(expiring, "/alerts/1").status != 401 &&
         std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(50ms);
  const auto decision = [](std::string_view outcome) {
    return R"(tokengate_auth_decisions_total{outcome=")" + std::string(outcome) + R"("})";
  };
  // Every request so far is counted once the last one (the expired key's 401) is.
  const auto before = f.after({{decision("expired"), 0}}, decision("expired"), 1);

  // One request for each outcome the README lists but stale (fleet mode's: fleet_outage_test).
  REQUIRE(f.get_with(reader.value, "/alerts/1").status == 200);   // allowed
  REQUIRE(f.get("/alerts/1").status == 401);                      // missing_key
  REQUIRE(f.get_with("tg_malformed", "/alerts/1").status == 401); // malformed_key
  REQUIRE(f.get_with(gone.value, "/alerts/1").status == 401);     // unknown_key
  REQUIRE(f.get_with(expiring, "/alerts/1").status == 401);       // expired
  REQUIRE(f.get_with(fenced.value, "/alerts/1").status == 403);   // address_denied
  REQUIRE(
      test::request(f.gate.port(), "DELETE", "/alerts/1", {{"X-API-Key", reader.value}}).status ==
      403);                                                     // permission_denied
  const auto no_route = f.get_with(reader.value, "/elsewhere"); // no_route
  REQUIRE(no_route.status == 403);
  REQUIRE(no_route.message() == "no route allows this path");
  REQUIRE(f.get("/public/x").status == 200); // an open route: no decision
  const auto main_4xx = R"(tokengate_http_requests_total{listener="main",code="4xx"})";
  const auto main_2xx = R"(tokengate_http_requests_total{listener="main",code="2xx"})";
  auto s = f.after(before, {{main_4xx, 7}, {main_2xx, 2}});
  for (const std::string outcome : {"allowed", "missing_key", "malformed_key", "unknown_key",
                                    "expired", "address_denied", "permission_denied", "no_route"})
    CHECK(moved(before, s, decision(outcome)) == 1);
  CHECK(moved(before, s, decision("stale")) == 0);
  CHECK(moved(before, s, main_4xx) == 7);
  CHECK(moved(before, s, main_2xx) == 2);

  // One token API call of each operation; a path the API lacks is "unknown" and decides no key.
  const auto api = [](std::string_view operation, std::string_view code) {
    return R"(tokengate_api_requests_total{operation=")" + std::string(operation) + R"(",code=")" +
           std::string(code) + R"("})";
  };
  const test::header_list key{{"X-API-Key", admin}};
  const auto port = f.gate.port();
  auto before_api = s;
  REQUIRE(test::request(port, "GET", "/api-tokens", key).status == 200);
  auto created = test::request(port, "POST", "/api-tokens", key,
                               R"({"name":"ops","permissions":["AlertRead"]})");
  REQUIRE(created.status == 200);
  const std::string id(created.json().at("id").as_string());
  REQUIRE(test::request(port, "GET", "/api-tokens/" + id, key).status == 200);
  REQUIRE(test::request(port, "POST", "/api-tokens/" + id, key,
                        R"({"name":"ops2","permissions":["AlertRead"]})")
              .status == 200);
  REQUIRE(test::request(port, "POST", "/api-tokens/" + id + "/rotate", key).status == 200);
  REQUIRE(test::request(port, "DELETE", "/api-tokens/" + id, key).status == 204);
  REQUIRE(test::request(port, "GET", "/api-tokens/" + id + "/rotate/x", key).status == 404);
  s = f.after(before_api, api("unknown", "4xx"), 1);
  for (const std::string operation : {"list", "create", "get", "update", "rotate", "delete"})
    CHECK(moved(before_api, s, api(operation, "2xx")) == 1);
  CHECK(moved(before_api, s, api("unknown", "4xx")) == 1);
  CHECK(moved(before_api, s, decision("allowed")) == 6);

  // The admin listener counts its own: a 404 there.
  const auto admin_4xx = R"(tokengate_http_requests_total{listener="admin",code="4xx"})";
  before_api = s;
  REQUIRE(test::request(f.gate.admin_port(), "GET", "/nothing-here").status == 404);
  s = f.after(before_api, admin_4xx, 1);
  CHECK(moved(before_api, s, admin_4xx) == 1);
  CHECK(moved(before_api, s, main_4xx) == 0);
}
