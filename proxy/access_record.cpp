#include "proxy/access_record.hpp"

#include "proxy/log.hpp"
#include "tokenapi/token_value.hpp"

namespace tokengate::proxy {

std::string access_record::to_line() const {
  // A key pasted into a path (say, where a token id belongs) is not written to the log.
  const bool pasted_key = tokenapi::holds_value(path);
  const std::string redacted = pasted_key ? tokenapi::redact_values(path) : std::string();
  json_line line;
  line.add("method", method)
      .add("path", pasted_key ? std::string_view(redacted) : path)
      .add("status", status)
      .add("token_id", token_id)
      .add("client", client)
      .add_ms("duration_ms", duration_ms);
  if (upstream_ms >= 0)
    line.add_ms("upstream_ms", upstream_ms);
  line.add("bytes_in", bytes_in)
      .add("bytes_out", bytes_out)
      .add("listener", admin ? "admin" : "main");
  if (!would_deny.empty())
    line.add("would_deny", would_deny);
  if (!cut.empty())
    line.add("cut", cut);
  return std::move(line).finish();
}

} // namespace tokengate::proxy
