#pragma once

#include <chrono>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

namespace tokengate::test {

/// A certificate and its key as PEM files.
struct certificate_files {
  std::filesystem::path cert;
  std::filesystem::path key;
};

/// What a certificate `test_ca::issue` makes says.
struct certificate_request {
  std::string common_name = "localhost";
  std::vector<std::string> dns_names = {"localhost"};
  std::vector<std::string> ip_addresses = {"127.0.0.1"};
  std::vector<std::string> uris;
  /// The subject alternative names in OpenSSL's form, in the certificate's order (e.g.
  /// "email:ops@example.com,IP:10.0.0.1"); when set, in place of the three lists above.
  std::string subject_alt_names;
  long serial = 2;
  std::chrono::seconds not_before = std::chrono::hours(-1); ///< from now
  std::chrono::seconds not_after = std::chrono::hours(24);  ///< from now
  bool rsa = false;                                         ///< an RSA 2048 key instead of EC P-256
};

/// A certificate for localhost with serial number `n`.
inline certificate_request serial(long n) {
  certificate_request r;
  r.serial = n;
  return r;
}

/// A throwaway certificate authority made at run time (EC P-256 keys, OpenSSL's C API): tests
/// never check in a private key.
class test_ca {
public:
  /// A new self-signed CA named `name`; its certificate is written to `dir`/`name`.crt.
  test_ca(const std::filesystem::path& dir, const std::string& name);
  /// A new intermediate CA named `name`, signed by `issuer`, valid for `not_after` from now; its
  /// certificate is written to `dir`/`name`.crt. What it issues is written with it as the chain.
  test_ca(const test_ca& issuer, const std::filesystem::path& dir, const std::string& name,
          std::chrono::seconds not_after);
  ~test_ca();
  test_ca(const test_ca&) = delete;
  test_ca& operator=(const test_ca&) = delete;

  /// The CA's certificate file (PEM).
  [[nodiscard]] const std::filesystem::path& cert_file() const { return cert_file_; }

  /// Issues a certificate (for server and client use) and writes it and its new key to
  /// `dir`/`name`.crt and `dir`/`name`.key.
  certificate_files issue(const std::filesystem::path& dir, const std::string& name,
                          const certificate_request& request = {}) const;

private:
  struct impl;
  std::unique_ptr<impl> impl_;
  std::filesystem::path cert_file_;
};

} // namespace tokengate::test
