// What a session answers itself rather than proxying: the token API on the main listener, and
// the admin listener's OpenAPI document, /metrics, /reload and probes.
#include "proxy/admin_endpoints.hpp"
#include "proxy/answer.hpp"
#include "proxy/decision_metrics.hpp"
#include "proxy/detail/session.hpp"
#include "proxy/key_fields.hpp"
#include "proxy/metrics.hpp"
#include "proxy/openapi_document.hpp"

namespace tokengate::proxy::detail {

using tokenapi::api_request;
using tokenapi::api_response;

net::awaitable<bool> session::serve_admin() {
  keep_alive_ = head_.version == 11 && http1::keeps_alive(head_);
  const auto framing = http1::request_framing(head_);
  body_ = framing ? *framing : http1::framing{};
  bodyless_ = framing && framing->type == http1::framing::kind::none;
  if (!framing)
    co_return co_await answer(400, "invalid message framing", true);
  if (!normalize_target(head_.target, target_))
    co_return co_await answer(400, "bad request path", true);
  record_.path = target_.path;
  const bool close = closing() || body_pending();
  if (target_.path == "/openapi.yaml" && (head_.method == "GET" || head_.method == "HEAD")) {
    record_.status = 200;
    build_response(out_, 200, "application/yaml", openapi_document(), close);
    co_return co_await write_answer(close);
  }
  if (target_.path == "/metrics" && (head_.method == "GET" || head_.method == "HEAD")) {
    const bool openmetrics = wants_openmetrics(head_.find("accept").value_or(""));
    record_.status = 200;
    build_response(out_, 200, metrics_content_type(openmetrics),
                   render_metrics(shared_.loops, gauges(), openmetrics), close);
    co_return co_await write_answer(close);
  }
  if (target_.path == "/reload" && head_.method == "POST") {
    // A browser sends Origin with a cross-site POST (a "simple" request needs no preflight):
    // a web page must not be able to make the sidecar reload.
    if (head_.find("origin"))
      co_return co_await answer(403, "cross-origin requests are refused on the admin listener",
                                close);
    co_return co_await serve_reload(close);
  }
  // Fleet mode answers from the follower's state: never a call to the database here.
  admin_state state{draining(), deps_.sync != nullptr || deps_.service.healthy(), std::nullopt,
                    std::nullopt};
  for (const auto* c : {shared_.tls.get(), shared_.admin_tls.get(), shared_.upstream_tls.get()})
    if (c != nullptr && !state.tls_reload_error)
      state.tls_reload_error = c->error();
  if (deps_.sync)
    state.fleet =
        fleet_state{deps_.sync->ever_synced(), deps_.sync->connected(), deps_.sync->staleness_ms()};
  const auto r = admin_response(head_.method, target_.path, state);
  co_return co_await answer_json(r, close);
}

net::awaitable<bool> session::serve_reload(bool close) {
  // Reading the file must not hold up this loop's other connections.
  awaiting_api_ = true;
  const reload_report report = co_await net::co_spawn(
      shared_.api_pool, [this]() -> net::awaitable<reload_report> { co_return shared_.reload(); },
      net::use_awaitable);
  awaiting_api_ = false;
  // A configuration that does not load is the operator's to fix: 422, and nothing changed.
  // (A named value: GCC 12 destroys a braced temporary in a co_await expression twice.)
  const bool ok = report.applied && report.certificate_error.empty();
  const api_response response{ok ? 200u : 422u, report.to_json(), {}, {}};
  co_return co_await answer_json(response, close);
}

metrics_gauges session::gauges() const {
  metrics_gauges g;
  g.connections_main = static_cast<std::int64_t>(shared_.connections.load());
  g.connections_admin = static_cast<std::int64_t>(shared_.admin_connections.load());
  g.connections_refused = shared_.refused_connections.load();
  g.tokens = deps_.auth.size();
  g.tokens_expiring = shared_.tokens_expiring.load(std::memory_order_relaxed);
  g.reloads_ok = shared_.reloads_ok.load(std::memory_order_relaxed);
  g.reloads_failed = shared_.reloads_failed.load(std::memory_order_relaxed);
  g.log_lines_dropped = deps_.log.dropped_lines();
  g.start_time_seconds = shared_.start_time_seconds;
  if (shared_.tls)
    g.tls_not_after.emplace_back("main", double(shared_.tls->facts().not_after));
  if (shared_.admin_tls)
    g.tls_not_after.emplace_back("admin", double(shared_.admin_tls->facts().not_after));
  // The client certificate shown to the upstream, when there is one.
  if (shared_.upstream_tls && shared_.upstream_tls->facts().not_after != 0)
    g.tls_not_after.emplace_back("upstream", double(shared_.upstream_tls->facts().not_after));
  return g;
}

void session::count_decision(std::optional<tokenapi::verdict> decision) {
  if (decision)
    w_.metrics.decisions[decision_slot(*decision)].add();
}

net::awaitable<bool> session::serve_api() {
  // The head's bytes are reused by the body reads below: the request keeps copies.
  api_key_.assign(key_.value_or(std::string_view{}));
  api_query_.assign(target_.query);
  api_request request{
      method_,         target_.path,
      api_query_,      key_ ? std::optional<std::string_view>(api_key_) : std::nullopt,
      client_address_, {}};
  if (auto early = deps_.api.refuse_early(request)) {
    count_decision(early->decision);
    api_caller_ = std::move(early->caller_id);
    w_.metrics.count_api_call(early->operation, early->status);
    if (early->caller)
      append_key_fields(key_fields_, *early->caller, early->previous_value, nullptr,
                        deps_.clock.now(), expiry_warning());
    co_return co_await answer_json(*early, closing() || body_pending());
  }
  // A body refused for its size or framing is answered by the handler too, so that the
  // caller is named, the attempt audited and counted, as any other refusal of the call.
  std::optional<tokenapi::api_error> unread;
  if (body_.type == http1::framing::kind::length && body_.length > limits().max_admin_body_bytes) {
    unread = tokenapi::api_error{413, body_limit_message()};
  } else {
    if (want_continue_ && !co_await client_stream().write(continue_line))
      co_return false;
    switch (co_await read_api_body()) {
    case body_status::ok:
      break;
    case body_status::failed:
      co_return false;
    case body_status::timed_out:
      unread = tokenapi::api_error{408, std::string(body_timeout_message)};
      break;
    case body_status::bad_framing:
      unread = tokenapi::api_error{400, std::string(http1::describe(scratch_.decoder.error()))};
      break;
    case body_status::too_large:
      unread = tokenapi::api_error{413, body_limit_message()};
      break;
    }
  }

  // A body the stop's cut broke off is no call to make (nor a refusal to audit).
  if (deadline_.shutdown)
    co_return co_await answer(503, shutdown_message, true);
  request.body = api_body_;
  awaiting_api_ = true;
  api_response response = co_await net::co_spawn(
      shared_.api_pool,
      [this, &request, &unread]() -> net::awaitable<api_response> {
        co_return deps_.api.handle(request, unread);
      },
      net::use_awaitable);
  awaiting_api_ = false;
  count_decision(response.decision);
  api_caller_ = std::move(response.caller_id);
  w_.metrics.count_api_call(response.operation, response.status);
  if (response.caller)
    append_key_fields(key_fields_, *response.caller, response.previous_value, nullptr,
                      deps_.clock.now(), expiry_warning());
  co_return co_await answer_json(response, closing() || unread.has_value());
}

net::awaitable<session::body_status> session::read_api_body() {
  api_body_.clear();
  if (body_.type == http1::framing::kind::length) {
    while (api_body_.size() < body_.length) {
      if (in_.empty())
        if (const auto got = co_await client_stream().read(read_chunk); !got)
          co_return got.timed_out ? body_status::timed_out : body_status::failed;
      const auto take = std::min<std::size_t>(in_.size(), body_.length - api_body_.size());
      api_body_.append(in_.data().substr(0, take));
      in_.consume(take);
    }
  } else if (body_.type == http1::framing::kind::chunked) {
    auto& decoder = scratch_.decoder;
    decoder.reset();
    while (!decoder.done()) {
      if (in_.empty())
        if (const auto got = co_await client_stream().read(read_chunk); !got)
          co_return got.timed_out ? body_status::timed_out : body_status::failed;
      const auto step = decoder.next(in_.data());
      if (!step)
        co_return body_status::bad_framing;
      in_.consume(step->consumed);
      api_body_.append(step->data);
      if (api_body_.size() > limits().max_admin_body_bytes)
        co_return body_status::too_large;
    }
  }
  record_.bytes_in = api_body_.size();
  co_return body_status::ok;
}

} // namespace tokengate::proxy::detail
