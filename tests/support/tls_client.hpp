#pragma once

#include "tests/support/http_client.hpp"

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

struct ssl_session_st; // OpenSSL's SSL_SESSION

namespace tokengate::test {

/// A TLS session a later client can offer to resume.
using tls_session = std::shared_ptr<ssl_session_st>;

/// How a `tls_client` connects.
struct tls_client_options {
  std::filesystem::path ca_file;   ///< trust this CA (the server's certificate is verified)
  std::filesystem::path cert_file; ///< a client certificate to show, when set
  std::filesystem::path key_file;
  std::string server_name = "localhost";        ///< SNI and the name checked in the certificate
  int min_version = 0;                          ///< e.g. TLS1_2_VERSION; 0: the library's default
  int max_version = 0;                          ///< 0: the newest
  tls_session resume;                           ///< offered in the handshake, when set
  std::vector<std::string> alpn = {"http/1.1"}; ///< the protocols offered (none: no ALPN)
  std::string ciphers; ///< the TLS 1.2 cipher list offered; empty: the library's default
};

/// The options of a client that trusts the CA whose certificate is `ca`.
inline tls_client_options trusting(const std::filesystem::path& ca) {
  tls_client_options o;
  o.ca_file = ca;
  return o;
}

/// An HTTPS client on one keep-alive connection to 127.0.0.1 (Boost.Asio SSL and Beast): an
/// implementation independent of the proxy's own.
class tls_client {
public:
  /// Connects and completes the handshake; throws std::runtime_error with OpenSSL's reason.
  tls_client(std::uint16_t port, const tls_client_options& options);
  ~tls_client();

  /// Sends a request and reads the whole answer; throws on a transport error.
  http_response request(std::string_view method, std::string_view target,
                        const header_list& headers = {}, std::string_view body = {});

  /// Sends raw bytes (a request written by hand); throws on a transport error.
  void send(std::string_view bytes);
  /// Sends bytes on the TCP connection under TLS, as they are: a record written by hand, or a
  /// part of one.
  void send_raw(std::string_view bytes);
  /// True when the server closed the TCP connection within `wait` (what arrives first, a TLS
  /// alert say, is dropped).
  [[nodiscard]] bool closed_within(std::chrono::milliseconds wait);
  /// Reads one answer; throws on a transport error (a reset connection, say).
  http_response read_response(bool head = false);

  /// The server certificate's serial number (hex), the protocol ("TLSv1.3") and ALPN's choice.
  [[nodiscard]] std::string peer_serial() const;
  [[nodiscard]] std::string version() const;
  /// The negotiated cipher suite's OpenSSL name.
  [[nodiscard]] std::string cipher() const;
  /// The bits of the server's ephemeral key exchange key (the DH or ECDH group), or 0.
  [[nodiscard]] int key_exchange_bits() const;
  [[nodiscard]] std::string alpn() const;
  /// Whether the server gave a session ticket (a stateless one in TLS 1.2).
  [[nodiscard]] bool has_ticket() const;
  /// The connection's session, for a later client to resume (in TLS 1.3 it arrives after the
  /// handshake: take it after a request).
  [[nodiscard]] tls_session session() const;
  /// Whether the handshake resumed the session in `tls_client_options::resume`.
  [[nodiscard]] bool resumed() const;

private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

/// "" when a handshake with these options succeeds, else why it failed.
[[nodiscard]] std::string handshake_error(std::uint16_t port, const tls_client_options& options);

} // namespace tokengate::test
