#pragma once
// What every fuzz target uses: a property check that aborts with a message, so that libFuzzer
// records the input that broke it (a plain assert would vanish in a release build).

#include <cstdio>
#include <cstdlib>
#include <string_view>

namespace tokengate::fuzz {

inline void check(bool ok, std::string_view property) {
  if (ok)
    return;
  std::fprintf(stderr, "property broken: %.*s\n", static_cast<int>(property.size()),
               property.data());
  std::abort();
}

inline std::string_view as_text(const unsigned char* data, std::size_t size) {
  return {reinterpret_cast<const char*>(data), size};
}

} // namespace tokengate::fuzz
