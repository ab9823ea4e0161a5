#include "proxy/key_fields.hpp"

#include "proxy/answer.hpp"

namespace tokengate::proxy {
namespace {

void append_time(std::string& out, std::int64_t unix_seconds) {
  out.append(tokenapi::format_rfc3339(tokenapi::timestamp(std::chrono::seconds(unix_seconds))));
}

} // namespace

bool expires_soon(const tokenapi::auth_entry& token, tokenapi::timestamp now,
                  std::chrono::seconds expiry_warning) noexcept {
  const auto seconds = now.time_since_epoch().count();
  return token.expires_at() > seconds && token.expires_at() - seconds <= expiry_warning.count();
}

void append_key_fields(std::string& out, const tokenapi::auth_entry& token, bool previous_value,
                       const tokenapi::rate_window::outcome* rate, tokenapi::timestamp now,
                       std::chrono::seconds expiry_warning) {
  if (previous_value) {
    out.append("X-Token-Rotated: expires=");
    append_time(out, token.previous_expires_at());
    out.append("\r\n");
  }
  if (expires_soon(token, now, expiry_warning)) {
    out.append("X-Token-Expires: ");
    append_time(out, token.expires_at());
    out.append("\r\n");
  }
  if (rate == nullptr || token.rate_requests() == 0)
    return;
  out.append("RateLimit-Policy: \"default\";q=");
  append_number(out, token.rate_requests());
  out.append(";w=");
  append_number(out, token.rate_seconds());
  out.append("\r\nRateLimit: \"default\";r=");
  append_number(out, rate->remaining);
  out.append(";t=");
  append_number(out, rate->reset_seconds);
  out.append("\r\n");
  if (!rate->allowed) {
    out.append("Retry-After: ");
    append_number(out, rate->reset_seconds);
    out.append("\r\n");
  }
}

} // namespace tokengate::proxy
