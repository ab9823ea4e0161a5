// Certificates for the TLS tests, made with OpenSSL's C API at run time.
#include "tests/support/test_certificates.hpp"

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <cstdio>
#include <stdexcept>

namespace tokengate::test {
namespace {

[[noreturn]] void fail(const std::string& what) {
  throw std::runtime_error("test certificates: " + what);
}

EVP_PKEY* new_key(bool rsa = false) {
  EVP_PKEY* key = rsa ? EVP_RSA_gen(2048) : EVP_EC_gen("P-256");
  if (key == nullptr)
    fail("cannot generate a key");
  return key;
}

void add_extension(X509* cert, X509* issuer, int nid, const std::string& value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str());
  if (ext == nullptr)
    fail("bad extension " + value);
  X509_add_ext(cert, ext, -1);
  X509_EXTENSION_free(ext);
}

// A certificate for `key` named `cn`, not yet signed.
X509* new_certificate(EVP_PKEY* key, const std::string& cn, long serial, std::chrono::seconds from,
                      std::chrono::seconds to) {
  X509* cert = X509_new();
  X509_set_version(cert, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(cert), serial);
  X509_gmtime_adj(X509_getm_notBefore(cert), static_cast<long>(from.count()));
  X509_gmtime_adj(X509_getm_notAfter(cert), static_cast<long>(to.count()));
  X509_set_pubkey(cert, key);
  X509_NAME* name = X509_get_subject_name(cert);
  X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>("tokengate tests"), -1, -1, 0);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                             reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1, 0);
  return cert;
}

void write_pem(const std::filesystem::path& path, X509* cert, EVP_PKEY* key, bool append = false) {
  FILE* f = std::fopen(path.c_str(), append ? "a" : "w");
  if (f == nullptr)
    fail("cannot write " + path.string());
  const bool ok = cert ? PEM_write_X509(f, cert) == 1
                       : PEM_write_PrivateKey(f, key, nullptr, nullptr, 0, nullptr, nullptr) == 1;
  std::fclose(f);
  if (!ok)
    fail("cannot write " + path.string());
}

} // namespace

struct test_ca::impl {
  EVP_PKEY* key = nullptr;
  X509* cert = nullptr;
  bool intermediate = false; ///< its certificate goes out with what it issues
  ~impl() {
    X509_free(cert);
    EVP_PKEY_free(key);
  }
};

test_ca::test_ca(const std::filesystem::path& dir, const std::string& name)
    : impl_(std::make_unique<impl>()), cert_file_(dir / (name + ".crt")) {
  impl_->key = new_key();
  impl_->cert =
      new_certificate(impl_->key, name, 1, std::chrono::hours(-1), std::chrono::hours(24 * 30));
  X509_set_issuer_name(impl_->cert, X509_get_subject_name(impl_->cert));
  add_extension(impl_->cert, impl_->cert, NID_basic_constraints, "critical,CA:TRUE");
  add_extension(impl_->cert, impl_->cert, NID_key_usage, "critical,keyCertSign,cRLSign");
  add_extension(impl_->cert, impl_->cert, NID_subject_key_identifier, "hash");
  if (X509_sign(impl_->cert, impl_->key, EVP_sha256()) == 0)
    fail("cannot sign the CA");
  write_pem(cert_file_, impl_->cert, nullptr);
}

test_ca::test_ca(const test_ca& issuer, const std::filesystem::path& dir, const std::string& name,
                 std::chrono::seconds not_after)
    : impl_(std::make_unique<impl>()), cert_file_(dir / (name + ".crt")) {
  impl_->key = new_key();
  impl_->intermediate = true;
  impl_->cert = new_certificate(impl_->key, name, 3, std::chrono::hours(-1), not_after);
  X509* parent = issuer.impl_->cert;
  X509_set_issuer_name(impl_->cert, X509_get_subject_name(parent));
  add_extension(impl_->cert, parent, NID_basic_constraints, "critical,CA:TRUE");
  add_extension(impl_->cert, parent, NID_key_usage, "critical,keyCertSign,cRLSign");
  add_extension(impl_->cert, parent, NID_subject_key_identifier, "hash");
  add_extension(impl_->cert, parent, NID_authority_key_identifier, "keyid");
  if (X509_sign(impl_->cert, issuer.impl_->key, EVP_sha256()) == 0)
    fail("cannot sign the intermediate CA " + name);
  write_pem(cert_file_, impl_->cert, nullptr);
}

test_ca::~test_ca() = default;

certificate_files test_ca::issue(const std::filesystem::path& dir, const std::string& name,
                                 const certificate_request& r) const {
  EVP_PKEY* key = new_key(r.rsa);
  X509* cert = new_certificate(key, r.common_name, r.serial, r.not_before, r.not_after);
  X509_set_issuer_name(cert, X509_get_subject_name(impl_->cert));
  std::string sans;
  const auto add = [&](std::string_view kind, const std::string& v) {
    sans += (sans.empty() ? "" : ",") + std::string(kind) + ":" + v;
  };
  for (const auto& d : r.dns_names)
    add("DNS", d);
  for (const auto& ip : r.ip_addresses)
    add("IP", ip);
  for (const auto& u : r.uris)
    add("URI", u);
  if (!r.subject_alt_names.empty())
    sans = r.subject_alt_names;
  add_extension(cert, impl_->cert, NID_basic_constraints, "critical,CA:FALSE");
  add_extension(cert, impl_->cert, NID_ext_key_usage, "serverAuth,clientAuth");
  add_extension(cert, impl_->cert, NID_authority_key_identifier, "keyid");
  if (!sans.empty())
    add_extension(cert, impl_->cert, NID_subject_alt_name, sans);
  const bool signed_ok = X509_sign(cert, impl_->key, EVP_sha256()) != 0;
  certificate_files files{dir / (name + ".crt"), dir / (name + ".key")};
  if (signed_ok) {
    write_pem(files.cert, cert, nullptr);
    if (impl_->intermediate)
      write_pem(files.cert, impl_->cert, nullptr, true);
    write_pem(files.key, nullptr, key);
  }
  X509_free(cert);
  EVP_PKEY_free(key);
  if (!signed_ok)
    fail("cannot sign " + name);
  return files;
}

} // namespace tokengate::test
