#include "proxy/metrics.hpp"

#include <prometheus/metric_family.h>
#include <prometheus/text_serializer.h>

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cassert>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <sstream>

#ifndef TOKENGATE_VERSION
#define TOKENGATE_VERSION "unknown"
#endif

namespace tokengate::proxy {
namespace {

namespace prom = prometheus;
using family_list = std::vector<prom::MetricFamily>;

constexpr std::array<std::string_view, 5> status_classes{"1xx", "2xx", "3xx", "4xx", "5xx"};

std::size_t class_of(unsigned status) noexcept {
  return std::clamp<unsigned>(status / 100, 1, 5) - 1;
}

prom::MetricFamily& add_family(family_list& out, std::string name, std::string help,
                               prom::MetricType type) {
  assert(out.size() < out.capacity()); // a reallocation would invalidate earlier references
  out.push_back({std::move(name), std::move(help), type, {}});
  return out.back();
}

void add_value(prom::MetricFamily& f, std::vector<prom::ClientMetric::Label> labels, double v) {
  prom::ClientMetric m;
  m.label = std::move(labels);
  if (f.type == prom::MetricType::Counter)
    m.counter.value = v;
  else
    m.gauge.value = v;
  f.metric.push_back(std::move(m));
}

// Sums one histogram over the loops into cumulative Prometheus buckets.
void add_histogram(prom::MetricFamily& f, std::vector<prom::ClientMetric::Label> labels,
                   std::span<const loop_metrics* const> loops,
                   const latency_histogram& (*pick)(const loop_metrics&)) {
  prom::ClientMetric m;
  m.label = std::move(labels);
  std::uint64_t cumulative = 0;
  for (std::size_t i = 0; i <= latency_histogram::bounds.size(); ++i) {
    for (const auto* l : loops)
      cumulative += pick(*l).bucket(i);
    const double bound =
        i < latency_histogram::bounds.size() ? latency_histogram::bounds[i] : INFINITY;
    m.histogram.bucket.push_back({cumulative, bound});
  }
  m.histogram.sample_count = cumulative;
  for (const auto* l : loops)
    m.histogram.sample_sum += pick(*l).sum_seconds();
  f.metric.push_back(std::move(m));
}

template <class F> std::uint64_t sum(std::span<const loop_metrics* const> loops, F&& pick) {
  std::uint64_t total = 0;
  for (const auto* l : loops)
    total += pick(*l);
  return total;
}

void add_requests(family_list& out, std::span<const loop_metrics* const> loops) {
  auto& requests =
      add_family(out, "tokengate_http_requests_total",
                 "Requests answered, by listener and status class.", prom::MetricType::Counter);
  auto& duration = add_family(out, "tokengate_http_request_duration_seconds",
                              "Time from a request's head to the end of its answer.",
                              prom::MetricType::Histogram);
  for (std::size_t l = 0; l < listener_names.size(); ++l) {
    const std::string listener(listener_names[l]);
    for (std::size_t c = 0; c < status_classes.size(); ++c)
      add_value(
          requests, {{"listener", listener}, {"code", std::string(status_classes[c])}},
          double(sum(loops, [&](const loop_metrics& m) { return m.requests[l][c].value(); })));
    static const latency_histogram& (*picks[])(const loop_metrics&) = {
        [](const loop_metrics& m) -> const latency_histogram& { return m.request_duration[0]; },
        [](const loop_metrics& m) -> const latency_histogram& { return m.request_duration[1]; }};
    add_histogram(duration, {{"listener", listener}}, loops, picks[l]);
  }
}

void add_decisions_and_api(family_list& out, std::span<const loop_metrics* const> loops) {
  auto& decisions =
      add_family(out, "tokengate_auth_decisions_total",
                 "Key checks on proxied requests, by outcome.", prom::MetricType::Counter);
  for (std::size_t o = 0; o < decision_outcomes.size(); ++o)
    add_value(decisions, {{"outcome", std::string(decision_outcomes[o])}},
              double(sum(loops, [&](const loop_metrics& m) { return m.decisions[o].value(); })));
  add_value(add_family(out, "tokengate_rate_limited_total",
                       "Proxied requests refused with 429 by their token's rate limit.",
                       prom::MetricType::Counter),
            {}, double(sum(loops, [](const loop_metrics& m) { return m.rate_limited.value(); })));
  auto& would_deny = add_family(out, "tokengate_would_deny_total",
                                "Requests a report-only route let through that it would have "
                                "refused, by reason.",
                                prom::MetricType::Counter);
  for (std::size_t r = 0; r < would_deny_reasons.size(); ++r)
    add_value(would_deny, {{"reason", std::string(would_deny_reasons[r])}},
              double(sum(loops, [&](const loop_metrics& m) { return m.would_deny[r].value(); })));
  auto& api =
      add_family(out, "tokengate_api_requests_total",
                 "Token API calls, by operation and status class.", prom::MetricType::Counter);
  for (std::size_t op = 0; op < api_operations.size(); ++op)
    for (std::size_t c = 0; c < status_classes.size(); ++c)
      add_value(
          api,
          {{"operation", std::string(api_operations[op])},
           {"code", std::string(status_classes[c])}},
          double(sum(loops, [&](const loop_metrics& m) { return m.api_calls[op][c].value(); })));
}

void add_upstream(family_list& out, std::span<const loop_metrics* const> loops) {
  auto& duration = add_family(out, "tokengate_upstream_request_duration_seconds",
                              "Time from sending a request upstream to the end of its answer.",
                              prom::MetricType::Histogram);
  add_histogram(duration, {}, loops, [](const loop_metrics& m) -> const latency_histogram& {
    return m.upstream_duration;
  });
  auto& errors = add_family(out, "tokengate_upstream_errors_total",
                            "Requests the upstream failed, by reason.", prom::MetricType::Counter);
  for (std::size_t r = 0; r < upstream_error_names.size(); ++r)
    add_value(
        errors, {{"reason", std::string(upstream_error_names[r])}},
        double(sum(loops, [&](const loop_metrics& m) { return m.upstream_errors[r].value(); })));
  auto& connections = add_family(out, "tokengate_upstream_connections_total",
                                 "Upstream connections used for a request: reused from the pool "
                                 "or new.",
                                 prom::MetricType::Counter);
  add_value(connections, {{"kind", "reused"}},
            double(sum(loops, [](const loop_metrics& m) { return m.upstream_reused.value(); })));
  add_value(connections, {{"kind", "new"}},
            double(sum(loops, [](const loop_metrics& m) { return m.upstream_new.value(); })));
  std::int64_t open = 0;
  for (const auto* l : loops)
    open += l->upstream_open.load(std::memory_order_relaxed);
  add_value(add_family(out, "tokengate_upstream_connections_open",
                       "Connections to the upstream now open.", prom::MetricType::Gauge),
            {}, double(open));
}

// CPU seconds and resident bytes of this process, from the kernel.
std::pair<double, double> process_usage() {
  rusage u{};
  ::getrusage(RUSAGE_SELF, &u);
  const double cpu = double(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
                     double(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
  long pages = 0;
  long resident = 0;
  if (std::FILE* f = std::fopen("/proc/self/statm", "r")) {
    if (std::fscanf(f, "%ld %ld", &pages, &resident) != 2)
      resident = 0;
    std::fclose(f);
  }
  return {cpu, double(resident) * double(::sysconf(_SC_PAGESIZE))};
}

void add_gauges(family_list& out, const metrics_gauges& g) {
  auto& open = add_family(out, "tokengate_connections_open", "Client connections now open.",
                          prom::MetricType::Gauge);
  add_value(open, {{"listener", "main"}}, double(g.connections_main));
  add_value(open, {{"listener", "admin"}}, double(g.connections_admin));
  add_value(add_family(out, "tokengate_connections_refused_total",
                       "Connections answered 503 at max_connections.", prom::MetricType::Counter),
            {}, double(g.connections_refused));
  add_value(
      add_family(out, "tokengate_tokens", "Live tokens in the store.", prom::MetricType::Gauge), {},
      double(g.tokens));
  add_value(add_family(out, "tokengate_tokens_expiring",
                       "Live tokens that expire within expiry_warning.", prom::MetricType::Gauge),
            {}, double(g.tokens_expiring));
  if (!g.tls_not_after.empty()) {
    auto& expiry = add_family(out, "tokengate_tls_certificate_expiry_seconds",
                              "Unix time the served TLS certificate expires, by listener.",
                              prom::MetricType::Gauge);
    for (const auto& [listener, at] : g.tls_not_after)
      add_value(expiry, {{"listener", std::string(listener)}}, at);
  }
  auto& reloads = add_family(out, "tokengate_config_reloads_total",
                             "Configuration reloads, by result.", prom::MetricType::Counter);
  add_value(reloads, {{"result", "success"}}, double(g.reloads_ok));
  add_value(reloads, {{"result", "failure"}}, double(g.reloads_failed));
  add_value(add_family(out, "tokengate_log_lines_dropped_total",
                       "Log lines dropped while stdout did not take them.",
                       prom::MetricType::Counter),
            {}, double(g.log_lines_dropped));
  add_value(add_family(out, "tokengate_build_info", "The running build.", prom::MetricType::Gauge),
            {{"version", TOKENGATE_VERSION}}, 1);
  const auto [cpu, resident] = process_usage();
  add_value(add_family(out, "process_cpu_seconds_total", "User and system CPU time spent.",
                       prom::MetricType::Counter),
            {}, cpu);
  add_value(add_family(out, "process_resident_memory_bytes", "Resident memory size.",
                       prom::MetricType::Gauge),
            {}, resident);
  add_value(add_family(out, "process_start_time_seconds",
                       "Start time of the process since the Unix epoch.", prom::MetricType::Gauge),
            {}, g.start_time_seconds);
}

std::string labels_text(const std::vector<prom::ClientMetric::Label>& labels,
                        std::string_view extra_name = {}, std::string_view extra_value = {}) {
  std::string out;
  auto add = [&](std::string_view n, std::string_view v) {
    out += out.empty() ? "{" : ",";
    out.append(n).append("=\"").append(v).append("\"");
  };
  for (const auto& l : labels)
    add(l.name, l.value); // label values are our own constants: nothing to escape
  if (!extra_name.empty())
    add(extra_name, extra_value);
  return out.empty() ? out : out + "}";
}

std::string number(double v) {
  if (std::isinf(v))
    return v > 0 ? "+Inf" : "-Inf";
  std::ostringstream s;
  s.precision(17);
  s << v;
  return s.str();
}

// OpenMetrics 1.0 text: counters are typed by their name without _total, the exposition ends
// with "# EOF".
std::string openmetrics_text(const family_list& families) {
  std::string out;
  for (const auto& f : families) {
    const bool is_counter = f.type == prom::MetricType::Counter;
    const std::string base =
        is_counter && f.name.ends_with("_total") ? f.name.substr(0, f.name.size() - 6) : f.name;
    const char* type = is_counter                              ? "counter"
                       : f.type == prom::MetricType::Histogram ? "histogram"
                                                               : "gauge";
    out += "# TYPE " + base + " " + type + "\n# HELP " + base + " " + f.help + "\n";
    for (const auto& m : f.metric) {
      if (f.type == prom::MetricType::Histogram) {
        for (const auto& b : m.histogram.bucket)
          out += base + "_bucket" + labels_text(m.label, "le", number(b.upper_bound)) + " " +
                 std::to_string(b.cumulative_count) + "\n";
        out += base + "_count" + labels_text(m.label) + " " +
               std::to_string(m.histogram.sample_count) + "\n";
        out += base + "_sum" + labels_text(m.label) + " " + number(m.histogram.sample_sum) + "\n";
      } else if (is_counter) {
        out += base + "_total" + labels_text(m.label) + " " + number(m.counter.value) + "\n";
      } else {
        out += f.name + labels_text(m.label) + " " + number(m.gauge.value) + "\n";
      }
    }
  }
  return out + "# EOF\n";
}

} // namespace

void latency_histogram::observe(std::chrono::nanoseconds d) noexcept {
  const double seconds = std::chrono::duration<double>(d).count();
  std::size_t i = 0;
  while (i < bounds.size() && seconds > bounds[i])
    ++i;
  buckets_[i].add();
  sum_ns_.add(static_cast<std::uint64_t>(std::max<std::int64_t>(d.count(), 0)));
}

std::uint64_t latency_histogram::count() const noexcept {
  std::uint64_t n = 0;
  for (const auto& b : buckets_)
    n += b.value();
  return n;
}

void loop_metrics::count_request(listener_kind l, unsigned status,
                                 std::chrono::nanoseconds took) noexcept {
  const auto i = static_cast<std::size_t>(l);
  requests[i][class_of(status)].add();
  request_duration[i].observe(took);
}

void loop_metrics::count_api_call(std::string_view operation, unsigned status) noexcept {
  const auto it = std::find(api_operations.begin(), api_operations.end(), operation);
  const auto op = static_cast<std::size_t>(it - api_operations.begin());
  api_calls[std::min(op, api_operations.size() - 1)][class_of(status)].add();
}

std::string render_metrics(std::span<const loop_metrics* const> loops, const metrics_gauges& gauges,
                           bool openmetrics) {
  family_list families;
  families.reserve(32); // more than there are: add_family's references stay valid
  add_requests(families, loops);
  add_decisions_and_api(families, loops);
  add_upstream(families, loops);
  add_gauges(families, gauges);
  if (openmetrics)
    return openmetrics_text(families);
  std::ostringstream out;
  prom::TextSerializer().Serialize(out, families);
  return std::move(out).str();
}

bool wants_openmetrics(std::string_view accept) noexcept {
  return accept.find("application/openmetrics-text") != std::string_view::npos;
}

std::string_view metrics_content_type(bool openmetrics) noexcept {
  return openmetrics ? "application/openmetrics-text; version=1.0.0; charset=utf-8"
                     : "text/plain; version=0.0.4; charset=utf-8";
}

} // namespace tokengate::proxy
