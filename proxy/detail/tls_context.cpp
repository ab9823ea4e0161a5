#include "proxy/detail/tls_context.hpp"

#include "proxy/regular_file.hpp"
#include "proxy/rewrite.hpp"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <ctime>
#include <stdexcept>
#include <vector>

namespace tokengate::proxy::detail {
namespace {

using context_ptr = std::shared_ptr<net::ssl::context>;

// Mozilla's "intermediate" profile (TLS 1.2 part; TLS 1.3's suites are OpenSSL's defaults,
// the same three the profile names).
constexpr const char* intermediate_ciphers =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"
    "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:"
    "DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384:DHE-RSA-CHACHA20-POLY1305";

constexpr unsigned char session_context[] = "tokengate";

// The reason of OpenSSL's latest error on this thread; the thread's queue is left empty.
std::string openssl_reason() {
  unsigned long last = 0;
  while (const auto e = ERR_get_error())
    last = e;
  const char* reason = last ? ERR_reason_error_string(last) : nullptr;
  return reason ? reason : "unreadable or not PEM";
}

[[noreturn]] void fail(const std::string& what) { throw std::runtime_error(what); }

// OpenSSL opens the files itself: only a regular file of a bounded size is handed to it (on a
// FIFO the reload would wait for good, /dev/zero would fill memory).
void check_file(const std::filesystem::path& file, const std::string& what) {
  if (auto why = check_regular_file(file.string(), max_pem_file_bytes))
    fail("cannot load " + what + " " + file.string() + ": " + *why);
}

// HTTP/1.1 (or 1.0) is spoken: a client that offers ALPN with neither of them (h2 alone, say)
// is refused in the handshake with no_application_protocol, as RFC 7301 3.2 asks, rather than
// left to find out from its first frame.
int select_http1(SSL*, const unsigned char** out, unsigned char* out_len, const unsigned char* in,
                 unsigned int in_len, void*) {
  static constexpr unsigned char http1[] = "\x08http/1.1\x08http/1.0";
  unsigned char* selected = nullptr;
  if (SSL_select_next_proto(&selected, out_len, http1, sizeof http1 - 1, in, in_len) !=
      OPENSSL_NPN_NEGOTIATED)
    return SSL_TLSEXT_ERR_ALERT_FATAL;
  *out = selected;
  return SSL_TLSEXT_ERR_OK;
}

std::int64_t unix_time(const ASN1_TIME* t) {
  std::tm tm{};
  if (t == nullptr || ASN1_TIME_to_tm(t, &tm) != 1)
    return 0;
  return static_cast<std::int64_t>(timegm(&tm));
}

// Where a session keeps the end of the chain it was verified with: a resumed session is not
// verified again, and a TLS 1.3 resumption copies it (ex_data included) into its new session.
int chain_end_index() {
  static const int index = SSL_SESSION_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
  return index;
}

// The earliest notAfter (Unix seconds) of the client's certificate chain: the certificate, its
// intermediate CAs and the CA that signed them, as verified in the full handshake; for a
// resumed session, what that handshake found; 0 without a client certificate.
std::int64_t chain_end(SSL* tls) {
  std::int64_t end = 0;
  if (STACK_OF(X509)* chain = SSL_get0_verified_chain(tls)) {
    for (int i = 0; i < sk_X509_num(chain); ++i) {
      const auto t = unix_time(X509_get0_notAfter(sk_X509_value(chain, i)));
      if (t != 0 && (end == 0 || t < end))
        end = t;
    }
    if (end != 0)
      return end;
  }
  if (SSL_SESSION* session = SSL_get_session(tls))
    if (void* kept = SSL_SESSION_get_ex_data(session, chain_end_index()))
      return static_cast<std::int64_t>(reinterpret_cast<std::intptr_t>(kept));
  X509* peer = SSL_get1_peer_certificate(tls);
  if (peer == nullptr)
    return 0;
  end = unix_time(X509_get0_notAfter(peer));
  X509_free(peer);
  return end;
}

// A cached session ends no later than the client certificate chain it was verified with:
// resumed (and TLS 1.3 resumes make a new session each time, with a new lifetime) it would
// otherwise let a client in on a certificate, or an intermediate CA's, that has since expired.
// Sessions without a client certificate keep their lifetime.
int end_with_client_certificate(SSL* tls, SSL_SESSION* session) {
  const auto end = chain_end(tls);
  if (end == 0)
    return 0;
  SSL_SESSION_set_ex_data(session, chain_end_index(),
                          reinterpret_cast<void*>(static_cast<std::intptr_t>(end)));
  const long left = static_cast<long>(end - ::time(nullptr)); // negative once past
  const long age = static_cast<long>(::time(nullptr)) - SSL_SESSION_get_time(session);
  const long lifetime = std::max(0L, age + left);
  if (lifetime < SSL_SESSION_get_timeout(session))
    SSL_SESSION_set_timeout(session, lifetime);
  return 0; // the cache holds its own reference
}

// The name in RFC 2253 form. `raw_bytes`: UTF-8 and control bytes stay as they are (OpenSSL
// would write them as RFC 2253's \XX), for a caller that escapes every such byte its own way.
std::string name_text(const X509_NAME* name, bool raw_bytes = false) {
  BIO* bio = BIO_new(BIO_s_mem());
  const unsigned long flags =
      raw_bytes ? XN_FLAG_RFC2253 & ~(ASN1_STRFLGS_ESC_MSB | ASN1_STRFLGS_ESC_CTRL)
                : XN_FLAG_RFC2253;
  X509_NAME_print_ex(bio, name, 0, flags);
  char* data = nullptr;
  const auto size = BIO_get_mem_data(bio, &data);
  std::string text(data, static_cast<std::size_t>(size > 0 ? size : 0));
  BIO_free(bio);
  return text;
}

certificate_facts facts_of(const X509* cert) {
  certificate_facts f;
  if (cert == nullptr)
    return f;
  f.subject = name_text(X509_get_subject_name(cert));
  if (BIGNUM* bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), nullptr)) {
    if (char* hex = BN_bn2hex(bn)) {
      f.serial = hex;
      OPENSSL_free(hex);
    }
    BN_free(bn);
  }
  f.not_after = unix_time(X509_get0_notAfter(cert));
  return f;
}

// The password callback: notes that a password was asked for, and gives none.
int no_password(char*, int, int, void* asked) {
  if (asked != nullptr)
    *static_cast<bool*>(asked) = true;
  return 0;
}

void load_pair(SSL_CTX* native, const std::filesystem::path& cert, const std::filesystem::path& key,
               std::string_view what) {
  check_file(cert, std::string(what) + " certificate");
  check_file(key, std::string(what) + " key");
  if (SSL_CTX_use_certificate_chain_file(native, cert.c_str()) != 1)
    fail("cannot load " + std::string(what) + " certificate " + cert.string() + ": " +
         openssl_reason());
  const auto mismatch = [&] {
    ERR_clear_error();
    fail(std::string(what) + " key " + key.string() + " does not match certificate " +
         cert.string());
  };
  // An encrypted key asks for its password through this callback (OpenSSL's default prompts
  // on the terminal and blocks): none is given, and the key is named as encrypted.
  bool asked_password = false;
  SSL_CTX_set_default_passwd_cb(native, no_password);
  SSL_CTX_set_default_passwd_cb_userdata(native, &asked_password);
  const bool loaded = SSL_CTX_use_PrivateKey_file(native, key.c_str(), SSL_FILETYPE_PEM) == 1;
  SSL_CTX_set_default_passwd_cb_userdata(native, nullptr);
  if (asked_password && !loaded) {
    ERR_clear_error();
    fail("cannot load " + std::string(what) + " key " + key.string() +
         ": the key file is encrypted (give it unencrypted)");
  }
  if (!loaded) {
    if (ERR_GET_REASON(ERR_peek_last_error()) == X509_R_KEY_VALUES_MISMATCH)
      mismatch();
    fail("cannot load " + std::string(what) + " key " + key.string() + ": " + openssl_reason());
  }
  if (SSL_CTX_check_private_key(native) != 1)
    mismatch();
}

// A whole server context from the files, or an exception: never half of one.
std::pair<context_ptr, certificate_facts> build_server_context(const tls_settings& s) {
  ERR_clear_error();
  auto context = std::make_shared<net::ssl::context>(net::ssl::context::tls_server);
  SSL_CTX* native = context->native_handle();
  SSL_CTX_set_min_proto_version(native, s.tls13_only ? TLS1_3_VERSION : TLS1_2_VERSION);
  // No session tickets: their key would never rotate. Sessions resume from the context's
  // cache instead (TLS 1.3 tickets then name a cached session), until a reload replaces it.
  SSL_CTX_set_options(native, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_TICKET);
  // A client that closes without close_notify (most do) ends its connection, not its session:
  // OpenSSL would otherwise take it for an attack and drop the session from the cache. A
  // request's end is told by its framing, never by the close.
  SSL_CTX_set_options(native, SSL_OP_IGNORE_UNEXPECTED_EOF);
  // OpenSSL's record buffers are freed while a connection is idle (most of a keep-alive's life).
  SSL_CTX_set_mode(native, SSL_MODE_RELEASE_BUFFERS);
  const auto& ciphers = s.ciphers.empty() ? std::string(intermediate_ciphers) : s.ciphers;
  if (SSL_CTX_set_cipher_list(native, ciphers.c_str()) != 1)
    fail("tls.ciphers: no usable cipher in \"" + ciphers + "\"");
  // The DHE suites of the list need a group: OpenSSL picks one as strong as the key (ffdhe2048
  // for RSA 2048, as the profile names). Without it they never negotiate.
  SSL_CTX_set_dh_auto(native, 1);
  load_pair(native, s.cert_file, s.key_file, "TLS");
  if (!s.client_ca_file.empty()) {
    check_file(s.client_ca_file, "TLS client CA");
    if (SSL_CTX_load_verify_locations(native, s.client_ca_file.c_str(), nullptr) != 1)
      fail("cannot load TLS client CA " + s.client_ca_file.string() + ": " + openssl_reason());
    if (auto* names = SSL_load_client_CA_file(s.client_ca_file.c_str()))
      SSL_CTX_set_client_CA_list(native, names);
    SSL_CTX_set_verify(native, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
    SSL_CTX_sess_set_new_cb(native, end_with_client_certificate);
  }
  // Resumed sessions need the context named, or OpenSSL refuses them when clients are verified.
  SSL_CTX_set_session_id_context(native, session_context, sizeof session_context - 1);
  // Expired sessions leave the cache on the server's 2-second tick (flush_expired_sessions),
  // not in a walk of the whole cache every 255 handshakes, inside one of them.
  SSL_CTX_set_session_cache_mode(native, SSL_SESS_CACHE_SERVER | SSL_SESS_CACHE_NO_AUTO_CLEAR);
  // One TLS 1.3 ticket per handshake, not OpenSSL's two: each is a cached session (memory, a
  // record, a write). A client may resume with it more than once, and every resumption brings
  // it a new one.
  SSL_CTX_set_num_tickets(native, 1);
  SSL_CTX_set_alpn_select_cb(native, select_http1, nullptr);
  auto facts = facts_of(SSL_CTX_get0_certificate(native));
  ERR_clear_error();
  return {std::move(context), std::move(facts)};
}

// A whole client context for the upstream from the files, or an exception.
std::pair<context_ptr, certificate_facts> build_upstream_context(const upstream_tls_settings& s) {
  ERR_clear_error();
  auto context = std::make_shared<net::ssl::context>(net::ssl::context::tls_client);
  SSL_CTX* native = context->native_handle();
  SSL_CTX_set_min_proto_version(native, TLS1_2_VERSION);
  SSL_CTX_set_options(native, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
  // Pooled connections are idle most of their life: their record buffers are freed meanwhile.
  SSL_CTX_set_mode(native, SSL_MODE_RELEASE_BUFFERS);
  if (!s.ca_file.empty())
    check_file(s.ca_file, "upstream_tls.ca_file");
  const bool loaded = s.ca_file.empty()
                          ? SSL_CTX_set_default_verify_paths(native) == 1
                          : SSL_CTX_load_verify_locations(native, s.ca_file.c_str(), nullptr) == 1;
  if (!loaded)
    fail("cannot load upstream_tls.ca_file " + s.ca_file.string() + ": " + openssl_reason());
  if (!s.cert_file.empty())
    load_pair(native, s.cert_file, s.key_file, "upstream_tls");
  SSL_CTX_set_verify(native, SSL_VERIFY_PEER, nullptr);
  static constexpr unsigned char http11[] = "\x08http/1.1";
  SSL_CTX_set_alpn_protos(native, http11, sizeof http11 - 1);
  auto facts = facts_of(SSL_CTX_get0_certificate(native));
  ERR_clear_error();
  return {std::move(context), std::move(facts)};
}

std::string asn1_text(const ASN1_STRING* s) {
  return std::string(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                     static_cast<std::size_t>(ASN1_STRING_length(s)));
}

std::string ip_text(const ASN1_OCTET_STRING* s) {
  const auto* b = ASN1_STRING_get0_data(s);
  const auto n = ASN1_STRING_length(s);
  char text[64] = {};
  if (n == 4) {
    std::snprintf(text, sizeof text, "%u.%u.%u.%u", b[0], b[1], b[2], b[3]);
  } else if (n == 16) {
    std::array<unsigned char, 16> bytes{};
    std::copy(b, b + 16, bytes.begin());
    return net::ip::address_v6(bytes).to_string();
  }
  return text;
}

std::vector<certificate_name> alternative_names(X509* cert) {
  std::vector<certificate_name> names;
  auto* sans =
      static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr));
  if (sans == nullptr)
    return names;
  for (int i = 0; i < sk_GENERAL_NAME_num(sans); ++i) {
    const GENERAL_NAME* n = sk_GENERAL_NAME_value(sans, i);
    switch (n->type) {
    case GEN_DNS:
      names.push_back({"DNS", asn1_text(n->d.dNSName)});
      break;
    case GEN_URI:
      names.push_back({"URI", asn1_text(n->d.uniformResourceIdentifier)});
      break;
    case GEN_EMAIL:
      names.push_back({"Email", asn1_text(n->d.rfc822Name)});
      break;
    case GEN_IPADD:
      names.push_back({"IP", ip_text(n->d.iPAddress)});
      break;
    default:
      break;
    }
  }
  GENERAL_NAMES_free(sans);
  return names;
}

} // namespace

reloadable_context::reloadable_context(builder build, std::vector<std::filesystem::path> files)
    : build_(std::move(build)), files_(std::move(files)) {
  stamp_ = read_stamp();
  auto [context, facts] = build_();
  context_.store(std::move(context));
  facts_ = std::move(facts);
}

std::optional<std::string> reloadable_context::reload() {
  std::lock_guard one_at_a_time(reload_mutex_);
  // The files are read without mutex_, which /healthz, /readyz and /metrics take (error(),
  // facts()): a slow read must not hold them. The result is swapped in under it.
  auto files_now = read_stamp();
  {
    std::lock_guard lock(mutex_);
    stamp_ = std::move(files_now); // the files this attempt reads, whatever comes of it
  }
  std::pair<context_ptr, certificate_facts> built;
  std::optional<std::string> failed;
  try {
    built = build_();
  } catch (const std::exception& e) {
    ERR_clear_error();
    failed = e.what();
  }
  std::lock_guard lock(mutex_);
  error_ = std::move(failed);
  if (!error_) {
    context_.store(std::move(built.first));
    facts_ = std::move(built.second);
  }
  return error_;
}

void reloadable_context::flush_expired_sessions() const {
  SSL_CTX_flush_sessions(current()->native_handle(), static_cast<long>(::time(nullptr)));
}

bool reloadable_context::changed_on_disk() const {
  const auto now = read_stamp();
  std::lock_guard lock(mutex_);
  return now != stamp_;
}

certificate_facts reloadable_context::facts() const {
  std::lock_guard lock(mutex_);
  return facts_;
}

std::optional<std::string> reloadable_context::error() const {
  std::lock_guard lock(mutex_);
  return error_;
}

reloadable_context::stamp reloadable_context::read_stamp() const {
  stamp s(files_.size());
  for (std::size_t i = 0; i < files_.size(); ++i) {
    struct stat st {};
    if (files_[i].empty() || ::stat(files_[i].c_str(), &st) != 0)
      continue;
    s[i] = {static_cast<std::int64_t>(st.st_dev), static_cast<std::int64_t>(st.st_ino),
            static_cast<std::int64_t>(st.st_size), static_cast<std::int64_t>(st.st_mtim.tv_sec),
            static_cast<std::int64_t>(st.st_mtim.tv_nsec)};
  }
  return s;
}

std::unique_ptr<reloadable_context> server_certificates(const tls_settings& s) {
  return std::make_unique<reloadable_context>(
      [s] { return build_server_context(s); },
      std::vector<std::filesystem::path>{s.cert_file, s.key_file, s.client_ca_file});
}

std::unique_ptr<reloadable_context> upstream_certificates(const upstream_tls_settings& s) {
  return std::make_unique<reloadable_context>(
      [s] { return build_upstream_context(s); },
      std::vector<std::filesystem::path>{s.ca_file, s.cert_file, s.key_file});
}

bool expect_upstream_host(SSL* tls, std::string_view name) {
  SSL* ssl = tls;
  const std::string host(name);
  boost::system::error_code ec;
  (void)net::ip::make_address(host, ec);
  const bool set =
      ec ? SSL_set_tlsext_host_name(ssl, host.c_str()) == 1 && SSL_set1_host(ssl, host.c_str()) == 1
         : X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), host.c_str()) == 1;
  ERR_clear_error();
  return set;
}

upstream_tls_failure upstream_tls_error(SSL* tls, const boost::system::error_code& ec) {
  const auto verify = SSL_get_verify_result(tls);
  ERR_clear_error();
  if (verify != X509_V_OK) {
    std::string reason = X509_verify_cert_error_string(verify);
    return {"upstream TLS certificate not accepted: " + reason, reason};
  }
  return {"upstream TLS handshake failed", ec.message()};
}

std::int64_t client_certificate_end(SSL* tls) { return chain_end(tls); }

std::string client_identity(SSL* tls) {
  X509* cert = SSL_get1_peer_certificate(tls);
  if (cert == nullptr)
    return {};
  const auto names = alternative_names(cert);
  // The subject's bytes outside printable ASCII are written \xNN, as the names' are.
  auto text = format_client_certificate(name_text(X509_get_subject_name(cert), true), names);
  X509_free(cert);
  return text;
}

} // namespace tokengate::proxy::detail
