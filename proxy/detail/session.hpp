#pragma once

// One client connection (README "The proxy"): read a head, admit it, then hand it to the token
// API, the proxy or the admin endpoints, and log it; repeat. The phases of a proxied request
// each have their unit: admission (proxy/admission), the decision (tokenapi/authorizer), the
// upstream request rewrite (proxy/rewrite), the upstream exchange (detail/upstream_exchange),
// the body relays (detail/body_relay), the access-log record (proxy/access_record). A session
// only sequences them: session.cpp for the connection's life, the token API and the admin
// endpoints, session_proxy.cpp for the proxied exchange.
//
// Every wait has a deadline in `deadline_`; the worker's sweeper cancels the sockets of a
// session whose deadline has passed.

#include "proxy/access_record.hpp"
#include "proxy/detail/body_relay.hpp"
#include "proxy/detail/upstream_exchange.hpp"
#include "proxy/detail/worker.hpp"
#include "proxy/path.hpp"

#include <list>
#include <memory>
#include <optional>
#include <string>

namespace tokengate::proxy::detail {

/// The interim answer to a request with `Expect: 100-continue`, sent before its body is read.
inline constexpr std::string_view continue_line = "HTTP/1.1 100 Continue\r\n\r\n";
/// How much a read from the client asks for at most.
inline constexpr std::size_t read_chunk = 16 * 1024;
/// Interim (1xx) answers an upstream may send before its final one; past them it gets a 502.
inline constexpr std::size_t max_interim_answers = 32;
/// The 401 of a request on a mutual-TLS connection whose client certificate has since expired.
inline constexpr std::string_view expired_certificate_message =
    "the client certificate has expired: connect again with a valid one";
/// The longest header_timeout_ms on the admin listener (README "Admin endpoints"): its few
/// connections must not be held by slow heads.
inline constexpr std::chrono::milliseconds admin_header_timeout{2000};
/// The 408 of a request whose body stalls for `idle_timeout_ms`.
inline constexpr std::string_view body_timeout_message =
    "request body timed out: nothing arrived for idle_timeout_ms";

/// The 503 of a request still in flight when the sidecar's stop has waited shutdown_timeout_ms.
inline constexpr std::string_view shutdown_message =
    "the sidecar is shutting down: the request was cut off at shutdown_timeout_ms and may have "
    "taken effect";

/// The peer address of a connected socket (IPv4-mapped peers as IPv4).
[[nodiscard]] tokenapi::ip_address address_of(const tcp::endpoint& e);

class session : public std::enable_shared_from_this<session> {
public:
  /// `peer`: the client's address as accept() gave it (no getpeername() per connection).
  session(worker& w, tcp::socket socket, const tcp::endpoint& peer, bool admin)
      : w_(w), shared_(w.shared), deps_(w.shared.deps), client_(std::move(socket)), admin_(admin),
        upstream_(w.pool, shared_.upstream_endpoints, w.settings->limits, deadline_, w.metrics,
                  {shared_.upstream_tls.get(), deps_.settings.upstream.host}) {
    peer_ = address_of(peer);
    peer_text_ = peer_.to_string();
    take_live_settings();
    client_address_ = peer_; // until a request says otherwise, e.g. for refused heads
    boost::system::error_code ignored;
    client_.socket().non_blocking(true, ignored); // for start_write
  }

  net::awaitable<void> run();

  /// Closes the connection now when it waits for a request.
  void drain();

  /// Whether this admin connection waits for a request (and has not been evicted): the admin
  /// listener, when full, closes the one that has waited longest (`idle_since()`).
  [[nodiscard]] bool evictable() const { return admin_ && idle_ && !evicted_; }
  [[nodiscard]] steady::time_point idle_since() const { return idle_since_; }
  /// Closes the connection to make room for a new one; if a request arrives first, after it.
  void evict();
  /// When this connection's TLS handshake started (main listener, while it is under way).
  [[nodiscard]] steady::time_point handshake_since() const { return handshake_since_; }
  /// Ends this connection's TLS handshake under way, to make room for a new one.
  void give_up_handshake();

  /// Called by the sweeper: cancels what the connection waits for once its deadline is past.
  void expire_if_due(steady::time_point now);

  /// Called when the sidecar's stop has waited shutdown_timeout_ms: ends what the connection
  /// waits for, now and after. A request without an answer yet is answered 503; its access line
  /// says `"cut":"shutdown"` either way.
  void cut();
  /// Called once the connection's loop has stopped for good: the access line of a request the
  /// cut could not end in time (status 0 when no answer went out at all).
  void log_unfinished();

private:
  timed_stream<flex_stream> client_stream() {
    return {client_, in_, deadline_, limits().idle_timeout, &record_.bytes_out};
  }
  /// The limits of the request in hand (of the live settings it started with).
  const proxy::limits& limits() const { return live_->limits; }
  /// header_timeout_ms, and at most admin_header_timeout on the admin listener.
  std::chrono::milliseconds header_timeout() const {
    return admin_ ? std::min(limits().header_timeout, admin_header_timeout)
                  : limits().header_timeout;
  }
  /// Takes the loop's live settings when a reload has changed them since the last request.
  void take_live_settings();
  bool draining() const { return shared_.draining.load(std::memory_order_relaxed); }
  bool closing() const { return !keep_alive_ || draining(); }
  /// Whether an early answer must close: its request body would be left unread.
  bool body_pending() const { return body_.type != http1::framing::kind::none; }

  // ---- the connection's life -------------------------------------------------------------

  net::awaitable<void> serve();

  /// On a TLS listener (only): answers a plain HTTP client with a 400, or completes the handshake
  /// (and reads the client certificate's names). False when the connection is to close.
  net::awaitable<bool> start_tls();
  /// Whether the client has sent nothing the connection has not read: its last request's
  /// framing was read and says it has no body, and nothing came after it.
  bool client_quiet();

  /// Reads the next request head into head_; false when the connection is to close (peer
  /// gone, timed out, drained, or the head refused and answered).
  net::awaitable<bool> read_head(bool first);

  // RFC 9112 section 2.2: a server should ignore empty lines before a request line.
  void skip_empty_lines();
  /// Whether in_ holds nothing of a request yet: nothing at all, or half an empty line.
  [[nodiscard]] bool between_requests() const;

  /// Answers a head that cannot be trusted with a JSON error, and closes.
  net::awaitable<bool> refuse(http1::refusal why);

  /// Closes our side, then reads and drops what the client still sends for a moment: closing
  /// with unread bytes would send a reset, which can destroy the answer before it is read.
  net::awaitable<void> linger();

  void close();

  // ---- tokengate's own answers -----------------------------------------------------------

  /// Writes a JSON error; returns whether the connection may carry on.
  net::awaitable<bool> answer(unsigned status, std::string_view message, bool close,
                              std::string_view allow = {});

  net::awaitable<bool> answer_json(const tokenapi::api_response& r, bool close);

  /// Writes the answer built in out_; the answer to HEAD is its head alone (RFC 9110 section
  /// 9.3.2), with the Content-Length GET would have had.
  net::awaitable<bool> write_answer(bool close);

  // ---- the main listener: admission, then the token API or the proxy ---------------------

  net::awaitable<bool> serve_request();

  net::awaitable<bool> serve_api();
  /// Counts a token API call's key decision in tokengate_auth_decisions_total, when it had one.
  void count_decision(std::optional<tokenapi::verdict> decision);

  std::string body_limit_message() const {
    return "request body is larger than " + std::to_string(limits().max_admin_body_bytes) +
           " bytes";
  }

  enum class body_status { ok, failed, timed_out, bad_framing, too_large };

  /// Reads the whole body of an API call into api_body_, within the limit (a body the API
  /// acts on as a whole, so buffered rather than relayed).
  net::awaitable<body_status> read_api_body();

  net::awaitable<bool> serve_proxy();

  /// The key check of a proxied request on a route that needs a key: the decision, then the
  /// rate limit; fills key_fields_. The refusal to answer with (status, message), or nullopt to
  /// go on; a report-only route's refusal is only logged and counted.
  std::optional<std::pair<unsigned, std::string>> check_key(const route& r);

  std::chrono::seconds expiry_warning() const { return live_->expiry_warning; }

  /// Logs, at most once a day per token, that its key expires soon.
  void warn_expiry(const tokenapi::auth_entry& token, tokenapi::timestamp now);

  // ---- the proxy: request out, response back ---------------------------------------------

  net::awaitable<bool> forward();

  /// Streams the rest of the request body upstream (chunked re-framed). On failure the client
  /// has been answered (or is gone) and the connection must close.
  net::awaitable<bool> relay_request_body(std::uint64_t remaining);

  net::awaitable<bool> relay_response();

  /// Reads response heads until a final one (into response_): interim 1xx answers are relayed
  /// to HTTP/1.1 clients (100 Continue excepted: tokengate answered that itself), 101 is a
  /// 502. On failure the client has been answered (or is gone).
  net::awaitable<bool> read_final_head();

  // ---- the admin listener ----------------------------------------------------------------

  net::awaitable<bool> serve_admin();

  /// POST /reload: the server's live reload, answered with its report.
  net::awaitable<bool> serve_reload(bool close);

  // ---- access log ------------------------------------------------------------------------

  /// Starts the access-log record of a new request (`method` empty for a refused head whose
  /// method is unknown).
  void begin_record(std::string_view method);

  /// Writes the access line (and counts the request) when an answer went out; `unfinished`: also
  /// when none did (`log_unfinished`).
  void log_access(bool unfinished = false);
  /// The figures /metrics reads from outside the event loops.
  [[nodiscard]] metrics_gauges gauges() const;

  worker& w_;
  shared_state& shared_;
  const server_dependencies& deps_;
  std::shared_ptr<const live_settings> live_; ///< routes, trusted proxies, limits in force
  flex_stream client_;
  deadline deadline_;
  bool logging_ = false; ///< the access log, and its timings: log_level info or debug
  bool admin_;
  bool idle_ = true; ///< waiting for a request: drain() may close the connection
  steady::time_point idle_since_ = coarse_now(); ///< when idle_ last became true
  bool evicted_ = false;                         ///< closes once it waits for a request (evict())
  /// Its place in w_.handshakes while its TLS handshake is under way (main listener).
  std::optional<std::list<session*>::iterator> handshake_;
  steady::time_point handshake_since_;
  bool gave_up_handshake_ = false; ///< give_up_handshake() ended it
  /// The wait for a head ended without one (a timeout, an eviction, the client's close): the
  /// close drains nothing (and frees the connection's slot now) when no answer is still on
  /// its way (linger()).
  bool head_abandoned_ = false;
  tokenapi::ip_address peer_;
  std::string peer_text_;
  bool peer_trusted_ = false; ///< the peer is one of the live trusted_proxies
  tokenapi::ip_address client_address_;
  std::shared_ptr<net::ssl::context> tls_context_; ///< the one the handshake used, kept
  bool tls_up_ = false;                            ///< the TLS handshake completed
  bool bodyless_ = false;          ///< the request's framing is known and has no body
  bool cut_short_ = false;         ///< an answer broke off: the close must not say it is whole
  bool in_request_ = false;        ///< a request has begun and its access line is not written
  bool awaiting_api_ = false;      ///< waiting for the token API's thread (api_pool)
  std::string client_certificate_; ///< the verified client certificate's names, or ""
  std::int64_t client_certificate_end_ = 0; ///< its notAfter (Unix seconds); 0 without one
  upstream_exchange upstream_;

  // The request in hand.
  byte_buffer in_;
  http1::head head_;
  http1::head response_;
  http1::framing body_;
  normalized_target target_;
  std::optional<std::string_view> key_;
  bool keep_alive_ = false;
  bool want_continue_ = false;
  std::string method_; ///< a copy: the head's bytes are reused by body reads
  std::string out_;
  std::string upstream_head_;
  relay_scratch scratch_;

  // The token API's copies of the request.
  std::string api_body_;
  std::string api_key_;
  std::string api_query_;

  // The access log.
  access_record record_;
  std::shared_ptr<const tokenapi::auth_entry> token_;
  std::string key_fields_;     ///< response fields about the key (proxy/key_fields), every answer
  bool send_identity_ = false; ///< X-Token-Id/-Name/-Permissions go upstream (key accepted)
  std::string api_caller_;
  steady::time_point started_{};
};

} // namespace tokengate::proxy::detail
