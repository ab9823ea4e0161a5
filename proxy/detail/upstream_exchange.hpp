#pragma once

#include "proxy/config.hpp"
#include "proxy/detail/stream_io.hpp"
#include "proxy/detail/tls_context.hpp"
#include "proxy/detail/upstream_pool.hpp"
#include "proxy/http1.hpp"
#include "proxy/metrics.hpp"

#include <memory>
#include <optional>
#include <span>
#include <string>

namespace tokengate::proxy::detail {

/// Why the upstream could not answer: what the client is told, and whether the connection to
/// the client must close (its request was partly sent, or its framing is lost).
struct upstream_failure {
  http1::refusal answer;
  bool must_close = true;
  /// What went wrong in more detail than the answer tells the client, for a warn log line
  /// ("" when the answer says it all).
  std::string_view detail{};
};

/// How to speak TLS to the upstream: `context` null for plain HTTP. A new connection takes the
/// context's current() (a reload may have replaced it); a pooled one keeps the one it began with.
struct upstream_tls {
  const reloadable_context* context = nullptr;
  std::string_view host; ///< the name (or address) its certificate must carry
};

/// The upstream side of one proxied request (README "The proxy", rule 4): a pooled or new
/// connection, the request's first bytes sent under the retry rules, response heads read.
/// Owned by one client connection; single-threaded.
class upstream_exchange {
public:
  upstream_exchange(upstream_pool& pool, std::span<const tcp::endpoint> endpoints, const limits& l,
                    deadline& clock, loop_metrics& metrics, upstream_tls tls);

  /// Sends `first` (the rewritten head and the body bytes in hand), on a pooled connection
  /// that passed its check or a new one, and starts the answer's clock. A request that is
  /// `retryable` is sent once more on a new connection if the upstream closes a pooled one
  /// before the first byte of an answer; any other only when not one byte of it was written.
  net::awaitable<std::optional<upstream_failure>> send(std::span<const net::const_buffer> first,
                                                       bool retryable);

  /// Gives the upstream `upstream_timeout` from now for the whole head of its answer, interim
  /// (1xx) answers included: pauses shorter than the timeout do not extend it.
  void start_answer_clock() { answer_due_ = coarse_now() + limits_->upstream_timeout; }

  /// Reads the next response head (1xx included) into `response`, by the answer's clock; its
  /// bytes stay in the buffer until `consume_head`. On failure the connection is discarded.
  net::awaitable<std::optional<upstream_failure>> read_head(http1::head& response);
  void consume_head(const http1::head& response) { connection_->buffer.consume(response.size); }

  /// The connection as a stream, for the body relays.
  [[nodiscard]] timed_stream<flex_stream> stream() {
    return {connection_->stream,  connection_->buffer, clock_, limits_->upstream_timeout, nullptr,
            &connection_->read_at};
  }

  /// The limits of the next exchanges (after a live reload).
  void use_limits(const limits& l) { limits_ = &l; }

  /// Ends the exchange: the connection goes back to the pool (when `reusable` and nothing is
  /// left unread) or is closed.
  void finish(bool reusable);
  /// Cancels what the connection waits for (the sweeper, past the deadline).
  void cancel();
  /// Counts a failure the session found past the head: an unusable response (ambiguous
  /// framing, an unasked 101), or a body that broke off. A wait the sidecar's stop cut short is
  /// not the upstream's failure, and is not counted.
  void count(upstream_error reason) {
    if (!clock_.shutdown)
      metrics_.upstream_errors[static_cast<std::size_t>(reason)].add();
  }

private:
  /// A new connection (and its TLS handshake); the failure otherwise.
  net::awaitable<std::optional<upstream_failure>> connect();
  net::awaitable<std::optional<upstream_failure>> handshake();
  void discard();
  /// Counts the failure, discards the connection, and returns `f`.
  upstream_failure fail(upstream_failure f, upstream_error reason);
  /// Reads more of the answer by its clock: on a pooled plain connection the first read is the
  /// one that watched it in the pool.
  net::awaitable<io_result> read_answer();
  /// The connection as a stream whose reads end at the answer's clock.
  [[nodiscard]] timed_stream<flex_stream> answer_stream();
  /// For a read that failed before an answer was complete: timed out (504) or closed (502).
  upstream_failure failed_read(const io_result& r);

  upstream_pool& pool_;
  std::span<const tcp::endpoint> endpoints_;
  const limits* limits_;
  deadline& clock_;
  loop_metrics& metrics_;
  upstream_tls tls_;
  upstream_tls_failure tls_error_; ///< the last TLS failure: the answer's text, the detail
  std::unique_ptr<upstream_connection> connection_;
  steady::time_point answer_due_{}; ///< when the answer's head must be in (start_answer_clock)
};

} // namespace tokengate::proxy::detail
