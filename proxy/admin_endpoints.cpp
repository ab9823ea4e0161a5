#include "proxy/admin_endpoints.hpp"

#include "tokenapi/token_json.hpp"

#include <string>

namespace tokengate::proxy {

tokenapi::api_response admin_response(std::string_view method, std::string_view path,
                                      const admin_state& state) {
  if (path == "/reload") // the server answers POST itself
    return {405, tokenapi::error_body("method not allowed"), "POST", {}};
  if (path != "/healthz" && path != "/readyz" && path != "/metrics" && path != "/openapi.yaml")
    return {404, tokenapi::error_body("not found"), {}, {}};
  if (method != "GET" && method != "HEAD")
    return {405, tokenapi::error_body("method not allowed"), "GET, HEAD", {}};
  if (path == "/healthz")
    return {200, R"({"status":"ok"})", {}, {}};
  if (state.draining)
    return {503, R"({"status":"draining"})", {}, {}};
  if (state.fleet && !state.fleet->synced)
    return {503, R"({"status":"not synced with the token database yet"})", {}, {}};
  if (state.fleet)
    return {200,
            R"({"status":"ready","database":")" +
                std::string(state.fleet->connected ? "connected" : "unreachable") +
                R"(","staleness_ms":)" + std::to_string(state.fleet->staleness_ms) + "}",
            {},
            {}};
  if (!state.store_healthy)
    return {503, R"({"status":"token store unavailable"})", {}, {}};
  return {200, R"({"status":"ready"})", {}, {}};
}

} // namespace tokengate::proxy
