#pragma once

// The log lines of TLS files loaded (README "TLS"): what was loaded, from where, and why.

#include "proxy/config.hpp"
#include "proxy/detail/tls_context.hpp"
#include "proxy/log.hpp"

#include <string_view>

namespace tokengate::proxy::detail {

/// A listener's certificate loaded: its file, subject, serial and `not_after` (a warning when it
/// has expired). `trigger`: "start", "watch" (the files changed on disk) or "reload" (SIGHUP,
/// POST /reload).
void log_certificate(log_sink& log, std::string_view listener, const tls_settings& s,
                     const certificate_facts& f, std::string_view trigger);

/// The upstream's CAs and client pair loaded (the client certificate's facts when there is one).
void log_upstream_files(log_sink& log, const upstream_tls_settings& s, const certificate_facts& f,
                        std::string_view trigger);

} // namespace tokengate::proxy::detail
