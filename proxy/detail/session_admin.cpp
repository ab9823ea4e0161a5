// The admin listener's side of a session: the OpenAPI document, /metrics, /reload and the
// probes.
#include "proxy/admin_endpoints.hpp"
#include "proxy/answer.hpp"
#include "proxy/detail/session.hpp"
#include "proxy/metrics.hpp"
#include "proxy/openapi_document.hpp"

namespace tokengate::proxy::detail {

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
  const reload_report report = co_await net::co_spawn(
      shared_.api_pool, [this]() -> net::awaitable<reload_report> { co_return shared_.reload(); },
      net::use_awaitable);
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

} // namespace tokengate::proxy::detail
