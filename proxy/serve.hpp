#pragma once

#include "proxy/config.hpp"

#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace tokengate::proxy {

/// `tokengate serve ARGS`: loads the configuration (README "Configuration"), wires the layers
/// (store, token service, server) and serves until SIGTERM or SIGINT, then stops gracefully;
/// SIGHUP reloads the configuration (README "Live reload").
/// Returns the exit status: 0 after a clean stop, 2 on a configuration error, 1 when the start
/// fails (each with one line on stderr). Call once, from the main thread, before any other
/// thread starts: it blocks the signals it waits for. `variables`: the names in the environment,
/// whose TOKENGATE_ ones that no setting reads are named in a warning (unread_variables).
[[nodiscard]] int run_sidecar(const std::vector<std::string_view>& args, const env_lookup& env,
                              std::span<const std::string> variables = {});

} // namespace tokengate::proxy
