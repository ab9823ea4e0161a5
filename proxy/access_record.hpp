#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

namespace tokengate::proxy {

/// One access-log line (README "Logs"), filled along a request's way and written once at its
/// end. Views must stay valid until `to_line` is called.
struct access_record {
  std::string_view method;   ///< empty for a head that could not be parsed
  std::string_view path;     ///< normalised, never the query (queries may hold secrets)
  unsigned status = 0;       ///< 0: nothing was answered (logged only when `cut`)
  std::string_view token_id; ///< the authenticated caller, empty when none
  std::string client;        ///< the address the request was decided on
  double duration_ms = 0;
  double upstream_ms = -1; ///< < 0: the upstream was not asked
  std::uint64_t bytes_in = 0;
  std::uint64_t bytes_out = 0;
  bool admin = false; ///< the admin listener
  /// Why a report-only route would have refused the request it let through; empty: it would not.
  std::string_view would_deny;
  /// "shutdown": the sidecar's stop cut the request short (README "Shutdown"); empty: it was not.
  std::string_view cut;

  /// The JSON line, e.g. {"time":...,"method":"GET","path":"/alerts/7","status":200,...}.
  [[nodiscard]] std::string to_line() const;
};

} // namespace tokengate::proxy
