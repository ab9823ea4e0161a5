#include "proxy/openapi_document.hpp"

namespace tokengate::proxy {

std::string_view openapi_document() noexcept {
  // A raw string literal of docs/openapi.yaml, written by proxy/CMakeLists.txt at configure time.
  static constexpr std::string_view text =
#include "proxy/openapi_document.inc"
      ;
  return text;
}

} // namespace tokengate::proxy
