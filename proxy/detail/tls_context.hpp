#pragma once

// OpenSSL contexts (through Asio's SSL layer): the listeners' certificates, reloadable, and
// the upstream's client side.

#include "proxy/config.hpp"
#include "proxy/detail/flex_stream.hpp"

#include <sys/stat.h>

#include <array>
#include <atomic>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace tokengate::proxy::detail {

/// What a certificate says of itself, for the log and /metrics.
struct certificate_facts {
  std::string subject;        ///< RFC 2253
  std::string serial;         ///< hex
  std::int64_t not_after = 0; ///< unix seconds
};

/// TLS files loaded into an OpenSSL context that can be loaded again while connections run
/// (README "TLS"): a listener's certificate pair, or the upstream's CAs and client pair. New
/// connections take `current()`; a connection keeps the context it started with, so a reload
/// never touches open connections. Files that fail to load, or a key that does not match its
/// certificate, leave the previous context in place: never half of a new one. Every member is
/// thread-safe.
class reloadable_context {
public:
  using context_ptr = std::shared_ptr<net::ssl::context>;
  /// Builds a whole context from the files, or throws std::runtime_error with one line.
  using builder = std::function<std::pair<context_ptr, certificate_facts>()>;

  /// Loads the context with `build`; `files` are those it reads (an empty path is skipped),
  /// watched by `changed_on_disk`. Throws what `build` throws.
  reloadable_context(builder build, std::vector<std::filesystem::path> files);

  /// The context for the next connection.
  [[nodiscard]] context_ptr current() const { return context_.load(); }

  /// Loads the files again: the new context replaces the old one when it loads whole; the
  /// error otherwise (also kept for `error()` until a reload succeeds).
  [[nodiscard]] std::optional<std::string> reload();

  /// Whether the files (followed through symlinks, as a Kubernetes secret's `..data` swap
  /// changes them) differ from those of the last reload or its attempt.
  [[nodiscard]] bool changed_on_disk() const;

  /// Drops the expired sessions from the current context's cache (a server context's cache
  /// is not cleared by its handshakes).
  void flush_expired_sessions() const;

  /// The loaded certificate's facts (empty when the context has no certificate of its own).
  [[nodiscard]] certificate_facts facts() const;
  /// Why the last reload failed, or nullopt when it succeeded.
  [[nodiscard]] std::optional<std::string> error() const;

private:
  /// Device, inode, size and modification time of each file, followed through symlinks.
  using stamp = std::vector<std::array<std::int64_t, 5>>;
  [[nodiscard]] stamp read_stamp() const;

  builder build_;
  std::vector<std::filesystem::path> files_;
  std::atomic<context_ptr> context_;
  std::mutex reload_mutex_;  ///< one reload at a time
  mutable std::mutex mutex_; ///< facts_, error_, stamp_
  certificate_facts facts_;
  std::optional<std::string> error_;
  stamp stamp_;
};

/// A listener's certificate pair (the `tls` or `admin_tls` block). Throws std::runtime_error
/// with one line naming the file when it cannot be loaded.
[[nodiscard]] std::unique_ptr<reloadable_context> server_certificates(const tls_settings& settings);

/// The context tokengate connects to an https:// upstream with: peer verification against
/// `ca_file` (or the system's store), TLS 1.2 or later, the client pair if set. Throws
/// std::runtime_error with one line when a file cannot be loaded.
[[nodiscard]] std::unique_ptr<reloadable_context>
upstream_certificates(const upstream_tls_settings& settings);

/// Prepares a client TLS layer for `host`: SNI (for a name) and the host name or IP address
/// check of the upstream's certificate. False when OpenSSL refused to set the check up: the
/// connection must not go on.
[[nodiscard]] bool expect_upstream_host(SSL* tls, std::string_view name);

/// Why a client handshake with the upstream failed: the 502's message (fixed texts, and the
/// certificate check's reason), and OpenSSL's detail for the log.
struct upstream_tls_failure {
  std::string answer;
  std::string detail;
};
[[nodiscard]] upstream_tls_failure upstream_tls_error(SSL* tls,
                                                      const boost::system::error_code& ec);

/// The names in the verified client certificate of a TLS connection (subject and SANs), as
/// `format_client_certificate` writes them; "" when the client showed none.
[[nodiscard]] std::string client_identity(SSL* tls);
/// The earliest notAfter (Unix seconds) of the verified client certificate and the CAs it was
/// verified with, or 0 when the client showed none.
[[nodiscard]] std::int64_t client_certificate_end(SSL* tls);

} // namespace tokengate::proxy::detail
