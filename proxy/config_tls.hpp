#pragma once

// The TLS blocks of the configuration (README "TLS"): `tls`, `admin_tls` and `upstream_tls`.

#include "proxy/config.hpp"

#include <boost/json/object.hpp>

#include <map>
#include <string>
#include <string_view>

namespace tokengate::proxy {

/// Whether `key` names a TLS block in the config file.
[[nodiscard]] bool is_tls_block(std::string_view key) noexcept;

/// Whether `flag` is a TLS block's flag: --tls-cert-file, --admin-tls-min-version, ...
[[nodiscard]] bool is_tls_flag(std::string_view flag) noexcept;

/// Applies the TLS blocks to `c`, merged key by key as limits are: the file's block (from
/// `file`, when set), TOKENGATE_<BLOCK> (a JSON object), TOKENGATE_<BLOCK>_<KEY>, then the flag
/// --<block>-<key>. `env` treats empty variables as unset. Call after `c.upstream_tls.enabled`
/// is known (an https:// upstream). Throws config_error naming the key and its source.
void apply_tls_settings(config& c, const boost::json::object* file, const std::string& file_source,
                        const env_lookup& env,
                        const std::map<std::string_view, std::string_view>& flags);

} // namespace tokengate::proxy
