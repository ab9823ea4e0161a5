#pragma once

#include "proxy/log_level.hpp"
#include "proxy/regular_file.hpp"
#include "proxy/route_table.hpp"
#include "tokenapi/ip.hpp"

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <set>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace tokengate::proxy {

/// HOST:PORT to listen on or connect to. `host` is an IP literal (IPv6 without brackets) or,
/// for the upstream only, a name resolved at start-up.
struct endpoint {
  std::string host;
  std::uint16_t port = 0;

  [[nodiscard]] std::string to_string() const;
  bool operator==(const endpoint&) const = default;
};

struct limits {
  std::size_t max_header_bytes = 16384;
  std::size_t max_admin_body_bytes = 65536;
  std::chrono::milliseconds header_timeout{10000};
  std::chrono::milliseconds idle_timeout{60000};
  std::chrono::milliseconds upstream_connect_timeout{2000};
  std::chrono::milliseconds upstream_timeout{30000};
  /// A pooled upstream connection unused this long is closed (nginx's upstream keepalive_timeout)
  std::chrono::milliseconds upstream_idle_timeout{60000};
  std::size_t max_connections = 10000;
  std::size_t max_tls_handshakes = 1000;             ///< TLS handshakes under way at once
  std::chrono::milliseconds shutdown_timeout{10000}; ///< longest wait for in-flight requests

  bool operator==(const limits&) const = default;
};

/// A listener's TLS (README "TLS"): off while `cert_file` is empty.
struct tls_settings {
  std::filesystem::path cert_file;      ///< PEM: the certificate, then its chain
  std::filesystem::path key_file;       ///< PEM: the certificate's private key
  std::filesystem::path client_ca_file; ///< PEM: set, clients must show a certificate it signed
  bool tls13_only = false;              ///< min_version "1.3" (default "1.2")
  std::string ciphers;                  ///< OpenSSL cipher list for TLS 1.2; empty: the default

  [[nodiscard]] bool enabled() const { return !cert_file.empty(); }
  bool operator==(const tls_settings&) const = default;
};

/// TLS to the upstream (README "TLS"), used when the upstream URL is https://.
struct upstream_tls_settings {
  bool enabled = false;
  std::filesystem::path ca_file;   ///< PEM: the CAs to trust; empty: the system's store
  std::filesystem::path cert_file; ///< PEM: a client certificate to show the upstream
  std::filesystem::path key_file;
  bool operator==(const upstream_tls_settings&) const = default;
};

/// Everything `tokengate serve` runs on, validated as a whole. A live reload (proxy/reload.hpp)
/// replaces the part it may change; the rest holds until a restart.
struct config {
  endpoint listen{"127.0.0.1", 8080};
  endpoint admin_listen{"127.0.0.1", 9901};
  endpoint upstream{"127.0.0.1", 8081};
  std::filesystem::path data_dir = "./data";
  std::filesystem::path bootstrap_token_file = "./data/admin-token";
  std::filesystem::path audit_log_file; ///< empty: audit events go to the log stream only
  unsigned threads = 2;
  log_level level = log_level::info;
  std::vector<tokenapi::cidr_block> trusted_proxies;
  std::vector<route> routes;
  std::optional<route> default_route = route{"/", {}, false, {}};
  proxy::limits limits;
  /// Fleet mode (README "Running a fleet"): a libpq connection string or URI; empty means
  /// standalone. Never logged as is: it may hold a password.
  std::string database_url;
  std::filesystem::path database_password_file; ///< empty: libpq's own means
  /// Fail closed (401 for every key) when cut off from the database longer than this.
  std::optional<std::chrono::milliseconds> max_staleness;
  /// A key this close to its expiresAt is warned (README "Expiry warnings"); 0: never.
  std::chrono::seconds expiry_warning{7 * 24 * 3600};
  tls_settings tls;       ///< the main listener
  tls_settings admin_tls; ///< the admin listener (default: plain)
  upstream_tls_settings upstream_tls;
};

/// A configuration mistake: one line that names the setting, where it came from, and what is
/// wrong with it.
class config_error : public std::runtime_error {
public:
  /// Control characters in `message` (from a file name or a key) are written as \xNN: the
  /// message is always one line.
  explicit config_error(const std::string& message);
};

/// The error for a command-line argument that is no known option: only its name (a mistyped
/// --database-url's value, or an argument that is a value without its option, may hold a
/// password).
[[nodiscard]] config_error unknown_option(std::string_view name);

/// Reads an environment variable; nullopt when unset.
using env_lookup = std::function<std::optional<std::string>(const std::string&)>;

/// Reads a whole file: its text, or why it cannot be read.
using file_reader = std::function<file_text(const std::string&)>;

/// The config file at `path`: a regular file of at most max_config_file_bytes (regular_file.hpp).
[[nodiscard]] file_text read_config_text(const std::string& path);

/// Builds the configuration of `tokengate serve` from its arguments (after "serve"), the
/// environment (TOKENGATE_*), the JSON file named by --config or TOKENGATE_CONFIG (read with
/// `read`), and the built-in defaults, in that order of precedence. Throws config_error.
[[nodiscard]] config load_config(const std::vector<std::string_view>& args, const env_lookup& env,
                                 const file_reader& read = read_config_text);

/// The variables among `names` (an environment's) that look like tokengate's (they begin with
/// TOKENGATE_ in any case) and that no setting reads: `read` holds the names load_config asked
/// for. A misspelt TOKENGATE_TLS_CERT_FILE would otherwise leave the listener plain, unseen.
/// Those Kubernetes makes for a Service named tokengate or tokengate-* (TOKENGATE_SERVICE_HOST,
/// TOKENGATE_ADMIN_PORT_9901_TCP and the like) are left out, and TOKENGATE_CONFIG counts as read
/// (a --config flag wins over it, as over every variable). Sorted, each once.
[[nodiscard]] std::vector<std::string> unread_variables(std::span<const std::string> names,
                                                        const std::set<std::string>& read);

/// Parses "HOST:PORT" or "[IPv6]:PORT" with an IP literal host (or "localhost").
[[nodiscard]] std::optional<endpoint> parse_listen_address(std::string_view text);

/// The text of `tokengate --help`.
[[nodiscard]] std::string_view usage();

} // namespace tokengate::proxy
