// The proxied exchange of a session: the decision, the request out, the response back.
#include "proxy/admission.hpp"
#include "proxy/answer.hpp"
#include "proxy/decision_metrics.hpp"
#include "proxy/detail/session.hpp"
#include "proxy/key_fields.hpp"
#include "proxy/log.hpp"
#include "proxy/rewrite.hpp"

#include <array>

namespace tokengate::proxy::detail {

std::optional<std::pair<unsigned, std::string>> session::check_key(const route& r) {
  const auto now = deps_.clock.now();
  auto decision = deps_.auth.decide(key_, client_address_, r.permissions, now);
  w_.metrics.decisions[decision_slot(decision.outcome)].add();
  const bool authenticated = decision.token && decision.outcome != tokenapi::verdict::expired_key;
  std::optional<std::pair<unsigned, std::string>> refusal;
  tokenapi::rate_window::outcome rate;
  if (!decision.allowed()) {
    refusal.emplace(decision.status(), decision.message(client_address_));
  } else if (rate = decision.token->take_rate(now); !rate.allowed) {
    refusal.emplace(429, "rate limit exceeded: " + std::to_string(decision.token->rate_requests()) +
                             " requests per " + std::to_string(decision.token->rate_seconds()) +
                             " s");
  }
  // Report-only: an address, permission or rate-limit refusal goes upstream, without the key's
  // identity unless the key passed (and only its rate limit was exceeded). A key that does not
  // authenticate is refused on every route.
  const auto reason = decision.allowed() ? std::optional(would_deny_rate_limited)
                                         : report_only_slot(decision.outcome);
  if (refusal && !r.enforce && reason) {
    w_.metrics.would_deny[*reason].add();
    record_.would_deny = would_deny_reasons[*reason];
    refusal.reset();
    rate.allowed = true; // no Retry-After on an answer that was not refused
  } else if (refusal && refusal->first == 429) {
    w_.metrics.rate_limited.add();
  }
  if (authenticated) {
    append_key_fields(key_fields_, *decision.token, decision.previous_value,
                      decision.allowed() ? &rate : nullptr, now, expiry_warning());
    warn_expiry(*decision.token, now);
  }
  send_identity_ = decision.allowed();
  token_ = std::move(decision.token); // for the access log, also when refused
  return refusal;
}

void session::warn_expiry(const tokenapi::auth_entry& token, tokenapi::timestamp now) {
  if (!expires_soon(token, now, expiry_warning()))
    return;
  const auto today = now.time_since_epoch().count() / 86'400;
  if (!token.first_expiry_warning_on(today))
    return;
  deps_.log.event(log_level::warn, "API key expires soon", [&](json_line& l) {
    l.add("token_id", token.id())
        .add("token_name", token.name())
        .add("expires_at", tokenapi::format_rfc3339(
                               tokenapi::timestamp(std::chrono::seconds(token.expires_at()))));
  });
}

net::awaitable<bool> session::serve_proxy() {
  const auto* route = live_->routes.match(head_.method, target_.path);
  if (route == nullptr) {
    w_.metrics.decisions[no_route_outcome].add();
    co_return co_await answer(403, "no route allows this path", closing() || body_pending());
  }
  send_identity_ = false;
  if (!route->open) {
    if (auto refusal = check_key(*route))
      co_return co_await answer(refusal->first, refusal->second, closing() || body_pending());
  }
  if (want_continue_ && !co_await client_stream().write(continue_line))
    co_return false;
  // No copy of the peer's text per request: only a client named by a trusted proxy is formatted.
  std::string named_client;
  const std::string_view client_text =
      client_address_ == peer_ ? std::string_view(peer_text_)
                               : std::string_view(named_client = client_address_.to_string());
  build_upstream_request(upstream_head_, head_,
                         {target_, body_, send_identity_ ? token_.get() : nullptr, peer_text_,
                          peer_trusted_, client_text, shared_.upstream_authority, tls_up_,
                          client_certificate_});
  co_return co_await forward();
}

net::awaitable<bool> session::forward() {
  const auto upstream_started = steady::now();
  // Content-Length bytes that came with the head go out with it, in one write.
  const std::size_t early_body =
      body_.type == http1::framing::kind::length
          ? static_cast<std::size_t>(std::min<std::uint64_t>(in_.size(), body_.length))
          : 0;
  const std::array<net::const_buffer, 2> first{net::buffer(upstream_head_),
                                               net::buffer(in_.data().data(), early_body)};
  if (auto failed = co_await upstream_.send(first, retryable(method_, body_, early_body))) {
    if (!failed->detail.empty())
      deps_.log.event(log_level::warn, "upstream TLS handshake failed", [&](json_line& l) {
        l.add("upstream", deps_.settings.upstream.host).add("error", failed->detail);
      });
    co_return co_await answer(failed->answer.status, failed->answer.message,
                              failed->must_close || closing() || body_pending());
  }
  in_.consume(early_body);
  record_.bytes_in = early_body;

  const bool more_body = body_.type == http1::framing::kind::chunked ||
                         (body_.type == http1::framing::kind::length && body_.length > early_body);
  if (more_body) {
    if (!co_await relay_request_body(body_.length - early_body))
      co_return false;
    upstream_.start_answer_clock(); // the upstream's time to answer runs from the body's end
  }
  const bool keep = co_await relay_response();
  const auto upstream_took = steady::now() - upstream_started;
  w_.metrics.upstream_duration.observe(upstream_took);
  record_.upstream_ms = std::chrono::duration<double, std::milli>(upstream_took).count();
  co_return keep;
}

net::awaitable<bool> session::relay_request_body(std::uint64_t remaining) {
  const auto r =
      co_await relay_body(client_stream(), upstream_.stream(), body_, remaining, past_end::stop,
                          body_.type == http1::framing::kind::chunked, {}, scratch_);
  record_.bytes_in += r.bytes;
  if (r.error == relay_error::none)
    co_return true;
  upstream_.finish(false);
  if (r.error == relay_error::framing)
    co_await answer(400, http1::describe(scratch_.decoder.error()), true);
  else if (r.error == relay_error::source && r.timed_out)
    co_await answer(408, body_timeout_message, true); // as nginx's client_body_timeout
  else if (r.error == relay_error::sink) {
    upstream_.count(r.timed_out ? upstream_error::timeout : upstream_error::reset);
    co_await answer(502, "upstream write failed", true);
  }
  co_return false;
}

net::awaitable<bool> session::relay_response() {
  if (!co_await read_final_head())
    co_return false;
  const auto response_framing = http1::response_framing(response_, method_);
  if (!response_framing) {
    upstream_.count(upstream_error::bad_response);
    upstream_.finish(false);
    co_await answer(502, "upstream sent an ambiguous response framing", true);
    co_return false;
  }
  const auto framing = *response_framing;
  using kind = http1::framing::kind;
  const bool chunked_out = framing.type == kind::chunked || framing.type == kind::until_close;
  const auto out_framing = !chunked_out          ? client_framing::as_upstream
                           : head_.version == 11 ? client_framing::chunked
                                                 : client_framing::until_close;
  const bool close = closing() || out_framing == client_framing::until_close;
  record_.status = response_.status;
  build_client_response(out_, response_, out_framing, close, key_fields_);
  // A 204 announcing a body may be followed by it: its connection serves no other request.
  const bool upstream_keeps =
      http1::keeps_alive(response_) && !http1::no_content_announces_body(response_);
  upstream_.consume_head(response_);

  const auto r =
      co_await relay_body(upstream_.stream(), client_stream(), framing, framing.length,
                          past_end::take, out_framing == client_framing::chunked, out_, scratch_);
  if (r.error != relay_error::none) {
    // The client going away is not the upstream's failure; a body that broke off is.
    if (r.error == relay_error::source)
      upstream_.count(r.timed_out ? upstream_error::timeout : upstream_error::reset);
    else if (r.error == relay_error::framing)
      upstream_.count(upstream_error::bad_response);
    upstream_.finish(false);
    // Framing broken before a byte went out (the head waits for the body's first bytes): the
    // client can still be told.
    if (r.error == relay_error::framing && !r.started) {
      co_await answer(502, "upstream sent a malformed response", true);
      co_return false;
    }
    cut_short_ = true;
    co_return false;
  }
  upstream_.finish(upstream_keeps && framing.type != kind::until_close);
  co_return !close;
}

net::awaitable<bool> session::read_final_head() {
  for (std::size_t interim = 0;; ++interim) {
    if (auto failed = co_await upstream_.read_head(response_)) {
      co_await answer(failed->answer.status, failed->answer.message, true);
      co_return false;
    }
    if (response_.status >= 200)
      co_return true;
    if (interim == max_interim_answers) {
      upstream_.count(upstream_error::bad_response);
      upstream_.finish(false);
      co_await answer(502, "upstream sent too many interim (1xx) answers", true);
      co_return false;
    }
    if (response_.status == 101) {
      upstream_.count(upstream_error::bad_response);
      upstream_.finish(false);
      co_await answer(502, "upstream switched protocols unasked", true);
      co_return false;
    }
    if (response_.status != 100 && head_.version == 11) {
      build_client_response(out_, response_, client_framing::as_upstream, false);
      if (!co_await client_stream().write(out_)) {
        upstream_.finish(false);
        co_return false;
      }
    }
    upstream_.consume_head(response_);
  }
}

} // namespace tokengate::proxy::detail
