#include "proxy/admin_endpoints.hpp"

#include "tokenapi/token_json.hpp"

namespace tokengate::proxy {

tokenapi::api_response admin_response(std::string_view method, std::string_view path,
                                      const admin_state& state) {
  if (path != "/healthz" && path != "/readyz" && path != "/metrics")
    return {404, tokenapi::error_body("not found"), {}, {}};
  if (method != "GET" && method != "HEAD")
    return {405, tokenapi::error_body("method not allowed"), "GET, HEAD", {}};
  if (path == "/healthz")
    return {200, R"({"status":"ok"})", {}, {}};
  if (state.draining)
    return {503, R"({"status":"draining"})", {}, {}};
  if (!state.store_healthy)
    return {503, R"({"status":"token store unavailable"})", {}, {}};
  return {200, R"({"status":"ready"})", {}, {}};
}

} // namespace tokengate::proxy
