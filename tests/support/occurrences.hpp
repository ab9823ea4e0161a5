#pragma once

#include <cstddef>
#include <string_view>

namespace tokengate::test {

/// How often `text` occurs in `all` (overlapping occurrences count): e.g. a log line in a
/// process's output.
[[nodiscard]] inline std::size_t occurrences(std::string_view all, std::string_view text) {
  std::size_t n = 0;
  for (auto at = all.find(text); at != std::string_view::npos; at = all.find(text, at + 1))
    ++n;
  return n;
}

} // namespace tokengate::test
