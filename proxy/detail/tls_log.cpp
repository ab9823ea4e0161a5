#include "proxy/detail/tls_log.hpp"

#include <chrono>
#include <ctime>

namespace tokengate::proxy::detail {

namespace {

std::string utc_text(std::int64_t unix_seconds) {
  const auto t = static_cast<std::time_t>(unix_seconds);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return text;
}

} // namespace

void log_certificate(log_sink& log, std::string_view listener, const tls_settings& s,
                     const certificate_facts& f, std::string_view trigger) {
  const auto now = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  log.event(f.not_after <= now ? log_level::warn : log_level::info,
            f.not_after <= now ? "TLS certificate loaded, and it has expired"
                               : "TLS certificate loaded",
            [&](json_line& l) {
              l.add("listener", listener)
                  .add("trigger", trigger)
                  .add("cert_file", s.cert_file.string())
                  .add("subject", f.subject)
                  .add("serial", f.serial)
                  .add("not_after", utc_text(f.not_after));
            });
}

void log_upstream_files(log_sink& log, const upstream_tls_settings& s, const certificate_facts& f,
                        std::string_view trigger) {
  log.event(log_level::info, "upstream TLS files loaded", [&](json_line& l) {
    l.add("trigger", trigger).add("ca_file", s.ca_file.string());
    if (!s.cert_file.empty())
      l.add("cert_file", s.cert_file.string())
          .add("subject", f.subject)
          .add("serial", f.serial)
          .add("not_after", utc_text(f.not_after));
  });
}

} // namespace tokengate::proxy::detail
