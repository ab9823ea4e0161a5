// echo-upstream HOST:PORT: the demo backend of `./dev run`. It answers every request with a JSON
// echo of what it received, so the headers tokengate adds (X-Token-*, X-Forwarded-*) are seen.
#include "tests/support/test_upstream.hpp"

#include <charconv>
#include <cstdio>
#include <string_view>

int main(int argc, char** argv) {
  std::string_view where = argc > 1 ? argv[1] : "127.0.0.1:8081";
  const auto colon = where.rfind(':');
  std::uint16_t port = 0;
  if (colon == std::string_view::npos || !where.starts_with("127.0.0.1:") ||
      std::from_chars(where.data() + colon + 1, where.data() + where.size(), port).ec !=
          std::errc()) {
    std::fprintf(stderr, "usage: echo-upstream 127.0.0.1:PORT\n");
    return 2;
  }
  try {
    tokengate::test::test_upstream upstream(port);
    std::fprintf(stderr, "echo-upstream: listening on 127.0.0.1:%u\n", upstream.port());
    upstream.wait();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "echo-upstream: %s\n", e.what());
    return 1;
  }
}
