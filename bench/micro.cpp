// Micro-benchmarks of the request hot path: key check, digest, index lookup, CIDR match, route
// match, path normalisation, head parsing and the whole decision, at 1,000 and 1,000,000 tokens.
#include "proxy/http1.hpp"
#include "proxy/metrics.hpp"
#include "proxy/path.hpp"
#include "proxy/route_table.hpp"
#include "tokenapi/authorizer.hpp"
#include "tokenapi/digest_table.hpp"
#include "tokenapi/plain_record.hpp"
#include "tokenapi/token.hpp"
#include "tokenapi/token_payload.hpp"
#include "tokenapi/token_value.hpp"

#include <benchmark/benchmark.h>

#include <map>
#include <memory>
#include <vector>

using namespace tokengate;

namespace {

// An authorizer holding `n` tokens with AlertRead loaded as at start-up, and one value among
// them (and the digests of a few thousand others), built once per n.
struct population {
  tokenapi::authorizer auth;
  std::string value;
  std::vector<store::digest> others;
};

population& populated(std::size_t n) {
  static std::map<std::size_t, std::unique_ptr<population>> cache;
  auto& p = cache[n];
  if (!p) {
    p = std::make_unique<population>();
    std::vector<tokenapi::token> page;
    for (std::size_t i = 0; i < n; ++i) {
      auto& t = page.emplace_back();
      t.permissions.insert(tokenapi::permission::AlertRead);
      t.id = *tokenapi::generate_id();
      t.name = "t" + std::to_string(i);
      p->value = *tokenapi::generate_value();
      t.value_digest = tokenapi::digest_of(p->value);
      if (i % (n / 4096 + 1) == 0)
        p->others.push_back(t.value_digest);
      if (page.size() == 10'000 || i + 1 == n) {
        p->auth.load(page);
        page.clear();
      }
    }
  }
  return *p;
}

const auto client = *tokenapi::ip_address::parse("10.1.2.3");
const auto now = std::chrono::floor<std::chrono::seconds>(std::chrono::system_clock::now());

void key_checksum(benchmark::State& state) {
  const auto value = *tokenapi::generate_value();
  for (auto _ : state)
    benchmark::DoNotOptimize(tokenapi::well_formed(value));
}
BENCHMARK(key_checksum);

void key_checksum_bad(benchmark::State& state) {
  auto value = *tokenapi::generate_value();
  value[10] = value[10] == 'a' ? 'b' : 'a';
  for (auto _ : state)
    benchmark::DoNotOptimize(tokenapi::well_formed(value));
}
BENCHMARK(key_checksum_bad);

void key_digest(benchmark::State& state) {
  const auto value = *tokenapi::generate_value();
  for (auto _ : state)
    benchmark::DoNotOptimize(tokenapi::digest_of(value));
}
BENCHMARK(key_digest);

void digest_lookup(benchmark::State& state) {
  auto& p = populated(static_cast<std::size_t>(state.range(0)));
  const auto d = tokenapi::digest_of(p.value);
  for (auto _ : state)
    benchmark::DoNotOptimize(p.auth.find(d));
}
BENCHMARK(digest_lookup)->Arg(1000)->Arg(1000000);

// Lookups of different tokens in turn: the table's and the entries' cache misses.
void digest_lookup_spread(benchmark::State& state) {
  auto& p = populated(static_cast<std::size_t>(state.range(0)));
  std::size_t i = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(p.auth.find(p.others[i]));
    i = i + 1 == p.others.size() ? 0 : i + 1;
  }
}
BENCHMARK(digest_lookup_spread)->Arg(1000)->Arg(1000000);

// The bare table (tokenapi/digest_table.hpp) at a million digests.
void digest_table_find(benchmark::State& state) {
  static std::vector<store::digest> keys;
  struct key_of {
    const store::digest& operator()(std::uint32_t v) const noexcept { return keys[v]; }
  };
  static tokenapi::digest_table<key_of> table;
  if (keys.empty()) {
    for (std::uint32_t i = 0; i < 1'000'000; ++i) {
      keys.push_back(tokenapi::digest_of(std::to_string(i)));
      table.insert_or_assign(keys.back(), i);
    }
  }
  std::size_t i = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(table.find(keys[i]));
    i = (i + 7919) % keys.size();
  }
}
BENCHMARK(digest_table_find);

void cidr_match(benchmark::State& state) {
  tokenapi::token t;
  for (auto b : {"192.168.0.0/16", "172.16.0.0/12", "2001:db8::/32", "10.0.0.0/8"})
    t.allowed_cidr_blocks.push_back(*tokenapi::cidr_block::parse(b));
  const auto entry = tokenapi::auth_entry::from(t);
  for (auto _ : state)
    benchmark::DoNotOptimize(entry->allows(client));
}
BENCHMARK(cidr_match);

void route_match(benchmark::State& state) {
  std::vector<proxy::route> routes;
  for (auto prefix : {"/public", "/static", "/rules", "/policies", "/users", "/settings"})
    routes.push_back({prefix, {}, false, {}});
  routes.push_back({"/alerts", {"GET", "HEAD"}, false, {}});
  routes.push_back({"/alerts", {}, false, {}});
  const proxy::route_table table(routes, proxy::route{"/", {}, false, {}});
  for (auto _ : state)
    benchmark::DoNotOptimize(table.match("POST", "/alerts/12345/comments"));
}
BENCHMARK(route_match);

void path_normalisation(benchmark::State& state) {
  proxy::normalized_target out;
  for (auto _ : state)
    benchmark::DoNotOptimize(proxy::normalize_target("/alerts/7/comments/../12?since=2026", out));
}
BENCHMARK(path_normalisation);

void head_parse(benchmark::State& state) {
  const std::string head = "GET /alerts/7 HTTP/1.1\r\nHost: api.example.com\r\n"
                           "User-Agent: benchmark/1.0\r\nAccept: application/json\r\n"
                           "X-API-Key: tg_0123456789012345678901234567890123456789012abcdef\r\n"
                           "X-Request-Id: 5d1c2f3a-8b9e-4c7d-a6f5-0e1d2c3b4a59\r\n\r\n";
  proxy::http1::head h;
  for (auto _ : state) {
    std::size_t scanned = 0;
    benchmark::DoNotOptimize(proxy::http1::scan_head(head, scanned));
    benchmark::DoNotOptimize(proxy::http1::parse_request(head, h));
  }
}
BENCHMARK(head_parse);

void whole_decision(benchmark::State& state) {
  auto& p = populated(static_cast<std::size_t>(state.range(0)));
  tokenapi::permission_set required;
  required.insert(tokenapi::permission::AlertRead);
  for (auto _ : state)
    benchmark::DoNotOptimize(p.auth.decide(std::string_view(p.value), client, required, now));
}
BENCHMARK(whole_decision)->Arg(1000)->Arg(1000000);

void whole_decision_bad_key(benchmark::State& state) {
  auto& p = populated(1000);
  auto bad = p.value;
  bad[5] = bad[5] == 'x' ? 'y' : 'x';
  for (auto _ : state)
    benchmark::DoNotOptimize(p.auth.decide(std::string_view(bad), client, {}, now));
}
BENCHMARK(whole_decision_bad_key);

// Start-up reads every stored record (README "Memory and start-up" in BENCHMARKS.md): the fast
// reader of the usual shape beside the full JSON decoder it falls back to.
store::token_record stored_record() {
  tokenapi::token t;
  t.id = *tokenapi::generate_id();
  t.name = "seed-123456";
  t.permissions.insert(tokenapi::permission::AlertRead);
  t.created_at = t.updated_at = now;
  t.created_by = t.updated_by = tokenapi::actor::system();
  t.value_digest = tokenapi::digest_of(*tokenapi::generate_value());
  return {t.id, t.value_digest, tokenapi::encode_payload(t), std::nullopt};
}

void stored_record_read(benchmark::State& state) {
  const auto r = stored_record();
  std::vector<tokenapi::cidr_block> blocks;
  for (auto _ : state) {
    benchmark::DoNotOptimize(tokenapi::read_plain_record(r, blocks));
    blocks.clear();
  }
}
BENCHMARK(stored_record_read);

void stored_record_decode(benchmark::State& state) {
  const auto r = stored_record();
  for (auto _ : state)
    benchmark::DoNotOptimize(tokenapi::decode_record(r));
}
BENCHMARK(stored_record_decode);

// A token's rate limit (README "Per-token rate limits"): one compare-and-swap per request, alone
// and with two threads counting on the same token (the event loops sharing one hot key).
void rate_limit_take(benchmark::State& state) {
  static tokenapi::rate_window window;
  const auto seconds = now.time_since_epoch().count();
  for (auto _ : state)
    benchmark::DoNotOptimize(window.take(1'000'000'000, 86'400, seconds));
}
BENCHMARK(rate_limit_take)->Threads(1)->Threads(2);

// The decision and the rate limit, as a proxied request on a limited token takes them.
void whole_decision_rate_limited(benchmark::State& state) {
  static tokenapi::authorizer auth;
  static const std::string value = [] {
    tokenapi::token t;
    t.id = *tokenapi::generate_id();
    t.name = "limited";
    t.permissions.insert(tokenapi::permission::AlertRead);
    t.rate_limit = tokenapi::rate_limit{1'000'000'000, 86'400};
    auto v = *tokenapi::generate_value();
    auth.publish(tokenapi::digest_of(v), tokenapi::auth_entry::from(t));
    return v;
  }();
  tokenapi::permission_set required;
  required.insert(tokenapi::permission::AlertRead);
  for (auto _ : state) {
    auto d = auth.decide(std::string_view(value), client, required, now);
    benchmark::DoNotOptimize(d.token->take_rate(now));
  }
}
BENCHMARK(whole_decision_rate_limited);

// What a proxied request adds to the figures of /metrics: its status and duration, a decision,
// the upstream's duration and connection (README "Metrics": a few tens of nanoseconds at most).
void metrics_per_request(benchmark::State& state) {
  proxy::loop_metrics m;
  const auto took = std::chrono::microseconds(450);
  for (auto _ : state) {
    m.count_request(proxy::listener_kind::main, 200, took);
    m.decisions[0].add();
    m.upstream_duration.observe(took);
    m.upstream_reused.add();
  }
  benchmark::DoNotOptimize(m.requests[0][1].value());
}
BENCHMARK(metrics_per_request);

} // namespace

BENCHMARK_MAIN();
