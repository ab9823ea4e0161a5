// The document the binary embeds (proxy/openapi_document.hpp) is docs/openapi.yaml byte for byte.
#include "proxy/openapi_document.hpp"

#include <catch2/catch.hpp>

#include <fstream>
#include <iterator>
#include <string>

TEST_CASE("the embedded OpenAPI document is docs/openapi.yaml", "[openapi]") {
  std::ifstream in(TOKENGATE_OPENAPI_DOC, std::ios::binary);
  REQUIRE(in);
  const std::string file{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  const auto embedded = tokengate::proxy::openapi_document();
  CHECK(embedded.size() == file.size());
  CHECK(embedded == file);
  CHECK(embedded.starts_with("openapi: 3.0.3\n"));
  CHECK(embedded.find("/api-tokens/{id}/rotate:") != std::string_view::npos);
}
