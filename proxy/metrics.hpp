#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace tokengate::proxy {

/// tokengate's figures for Prometheus (README "Metrics"). Labels hold only bounded sets of
/// values (listener, status class, outcome, reason, operation): never a key, a token id or a
/// path.

/// A counter written by one thread only and read by any: a relaxed load and store, no locked
/// instruction, so counting costs about a nanosecond on the request path.
class counter {
public:
  void add(std::uint64_t n = 1) noexcept {
    value_.store(value_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
  [[nodiscard]] std::uint64_t value() const noexcept {
    return value_.load(std::memory_order_relaxed);
  }

private:
  std::atomic<std::uint64_t> value_{0};
};

/// A latency histogram with fixed buckets fine enough for sub-millisecond proxying; one writer.
class latency_histogram {
public:
  /// Upper bounds in seconds (the last bucket, +Inf, is implied).
  static constexpr std::array<double, 16> bounds{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
                                                 0.01,   0.025,   0.05,   0.1,   0.25,   0.5,
                                                 1,      2.5,     5,      10};
  void observe(std::chrono::nanoseconds d) noexcept;
  [[nodiscard]] std::uint64_t bucket(std::size_t i) const noexcept { return buckets_[i].value(); }
  [[nodiscard]] std::uint64_t count() const noexcept;
  [[nodiscard]] double sum_seconds() const noexcept {
    return static_cast<double>(sum_ns_.value()) / 1e9;
  }

private:
  std::array<counter, bounds.size() + 1> buckets_;
  counter sum_ns_;
};

enum class listener_kind : std::uint8_t { main, admin };
inline constexpr std::array<std::string_view, 2> listener_names{"main", "admin"};

/// Auth decisions (decision_slot in proxy/decision_metrics.hpp maps each verdict), then no_route.
inline constexpr std::array<std::string_view, 9> decision_outcomes{
    "allowed",        "missing_key",       "malformed_key", "unknown_key", "expired",
    "address_denied", "permission_denied", "stale",         "no_route"};
inline constexpr std::size_t stale_outcome = 7;
inline constexpr std::size_t no_route_outcome = 8;

/// Why a report-only route (`"enforce": false`) would have refused a request it let through
/// (report_only_slot in proxy/decision_metrics.hpp), then the rate limit. Authentication
/// failures are refused on every route and never counted here.
inline constexpr std::array<std::string_view, 3> would_deny_reasons{
    "address_denied", "permission_denied", "rate_limited"};
inline constexpr std::size_t would_deny_rate_limited = 2;

enum class upstream_error : std::uint8_t { connect, timeout, reset, bad_response };
inline constexpr std::array<std::string_view, 4> upstream_error_names{"connect", "timeout", "reset",
                                                                      "bad_response"};

/// The token API's operations (tokenapi::api_response::operation).
inline constexpr std::array<std::string_view, 7> api_operations{
    "list", "create", "get", "update", "delete", "rotate", "unknown"};

/// The figures of one event loop, written by that loop's thread only.
struct loop_metrics {
  /// [listener][status class 1xx..5xx]
  std::array<std::array<counter, 5>, 2> requests;
  std::array<latency_histogram, 2> request_duration; ///< by listener
  std::array<counter, decision_outcomes.size()> decisions;
  counter rate_limited; ///< proxied requests answered 429
  std::array<counter, would_deny_reasons.size()> would_deny;
  latency_histogram upstream_duration;
  std::array<counter, upstream_error_names.size()> upstream_errors;
  counter upstream_reused;
  counter upstream_new;
  std::atomic<std::int64_t> upstream_open{0}; ///< connections to the upstream now
  /// [operation][status class]
  std::array<std::array<counter, 5>, api_operations.size()> api_calls;

  void count_request(listener_kind l, unsigned status, std::chrono::nanoseconds took) noexcept;
  void count_api_call(std::string_view operation, unsigned status) noexcept;
};

/// Figures read at scrape time from elsewhere.
struct metrics_gauges {
  std::int64_t connections_main = 0;
  std::int64_t connections_admin = 0;
  std::uint64_t connections_refused = 0;
  std::uint64_t tokens = 0;
  std::uint64_t tokens_expiring = 0; ///< within expiry_warning
  std::uint64_t reloads_ok = 0;
  std::uint64_t reloads_failed = 0;
  std::uint64_t log_lines_dropped = 0; ///< while stdout did not take them
  double start_time_seconds = 0;       ///< unix time of the process start
  /// The served TLS certificates' expiry (unix seconds) by listener ("main", "admin"); empty
  /// without TLS.
  std::vector<std::pair<std::string_view, double>> tls_not_after;
};

/// The exposition of every loop's figures summed, plus the gauges and the process figures:
/// Prometheus text 0.0.4 (by prometheus-cpp's serializer), or OpenMetrics 1.0 when `openmetrics`.
[[nodiscard]] std::string render_metrics(std::span<const loop_metrics* const> loops,
                                         const metrics_gauges& gauges, bool openmetrics);

/// Whether an Accept header asks for OpenMetrics (application/openmetrics-text).
[[nodiscard]] bool wants_openmetrics(std::string_view accept) noexcept;

/// The Content-Type of the exposition.
[[nodiscard]] std::string_view metrics_content_type(bool openmetrics) noexcept;

} // namespace tokengate::proxy
