#pragma once

#include <string_view>

namespace tokengate::proxy {

/// docs/openapi.yaml, the token API's OpenAPI 3 document, as it was when this binary was built
/// (embedded by proxy/CMakeLists.txt), for the admin listener to serve as `GET /openapi.yaml`.
std::string_view openapi_document() noexcept;

} // namespace tokengate::proxy
