#pragma once

namespace tokengate::proxy {

/// How much the log says, from everything (debug) to failures only (error).
enum class log_level { debug, info, warn, error };

} // namespace tokengate::proxy
