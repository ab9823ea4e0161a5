#include "tests/support/tls_client.hpp"

#include "tests/support/read_response.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>

#include <openssl/ssl.h>
#include <stdexcept>

namespace tokengate::test {
namespace {

namespace net = boost::asio;
namespace ssl = net::ssl;
namespace http = boost::beast::http;
using tcp = net::ip::tcp;

ssl::context make_context(const tls_client_options& o) {
  ssl::context ctx(ssl::context::tls_client);
  if (!o.ca_file.empty()) {
    ctx.load_verify_file(o.ca_file.string());
    ctx.set_verify_mode(ssl::verify_peer);
  }
  if (!o.cert_file.empty()) {
    ctx.use_certificate_chain_file(o.cert_file.string());
    ctx.use_private_key_file(o.key_file.string(), ssl::context::pem);
  }
  if (!o.ciphers.empty())
    SSL_CTX_set_cipher_list(ctx.native_handle(), o.ciphers.c_str());
  if (o.min_version)
    SSL_CTX_set_min_proto_version(ctx.native_handle(), o.min_version);
  if (o.max_version)
    SSL_CTX_set_max_proto_version(ctx.native_handle(), o.max_version);
  // Old protocol versions need the lowest security level to be offered at all.
  if (o.max_version && o.max_version < TLS1_2_VERSION)
    SSL_CTX_set_security_level(ctx.native_handle(), 0);
  std::string alpn; // ALPN's wire form: each name after its length
  for (const auto& name : o.alpn)
    alpn.append(1, static_cast<char>(name.size())).append(name);
  if (!alpn.empty())
    SSL_CTX_set_alpn_protos(ctx.native_handle(),
                            reinterpret_cast<const unsigned char*>(alpn.data()),
                            static_cast<unsigned>(alpn.size()));
  return ctx;
}

} // namespace

struct tls_client::impl {
  explicit impl(const tls_client_options& o) : ctx(make_context(o)), stream(io, ctx) {}
  net::io_context io;
  ssl::context ctx;
  ssl::stream<tcp::socket> stream;
  boost::beast::flat_buffer buffer;
};

tls_client::tls_client(std::uint16_t port, const tls_client_options& o)
    : impl_(std::make_unique<impl>(o)) {
  auto& s = impl_->stream;
  s.next_layer().connect({net::ip::make_address("127.0.0.1"), port});
  SSL_set_tlsext_host_name(s.native_handle(), o.server_name.c_str());
  if (!o.ca_file.empty())
    SSL_set1_host(s.native_handle(), o.server_name.c_str());
  if (o.resume)
    SSL_set_session(s.native_handle(), o.resume.get());
  boost::system::error_code ec;
  s.handshake(ssl::stream_base::client, ec);
  if (ec)
    throw std::runtime_error("TLS handshake failed: " + ec.message());
  // A server that refuses a client certificate says so after a TLS 1.3 handshake: a first read
  // would see it. Requests do that read.
}

tls_client::~tls_client() = default;

http_response tls_client::request(std::string_view method, std::string_view target,
                                  const header_list& headers, std::string_view body) {
  http::request<http::string_body> req{http::string_to_verb(method), target, 11};
  req.set(http::field::host, "localhost");
  for (const auto& [n, v] : headers)
    req.insert(n, v);
  if (!body.empty() || method == "POST" || method == "PUT" || method == "PATCH") {
    req.body() = std::string(body);
    req.prepare_payload();
  }
  http::write(impl_->stream, req);
  return read_response(method == "HEAD");
}

void tls_client::send(std::string_view bytes) {
  net::write(impl_->stream, net::buffer(bytes.data(), bytes.size()));
}

void tls_client::send_raw(std::string_view bytes) {
  net::write(impl_->stream.next_layer(), net::buffer(bytes.data(), bytes.size()));
}

bool tls_client::closed_within(std::chrono::milliseconds wait) {
  return peer_closed_within(impl_->stream.next_layer().native_handle(), wait);
}

http_response tls_client::read_response(bool head) {
  return test::read_response(impl_->stream, impl_->buffer, head);
}

bool tls_client::has_ticket() const {
  const SSL_SESSION* session = SSL_get_session(impl_->stream.native_handle());
  return session != nullptr && SSL_SESSION_has_ticket(session) == 1;
}

// A copy: OpenSSL marks a connection's own session unresumable when it ends without a TLS
// close, as this client's do.
tls_session tls_client::session() const {
  const SSL_SESSION* s = SSL_get0_session(impl_->stream.native_handle());
  return {s ? SSL_SESSION_dup(s) : nullptr, SSL_SESSION_free};
}

bool tls_client::resumed() const { return SSL_session_reused(impl_->stream.native_handle()) == 1; }

std::string tls_client::peer_serial() const {
  X509* cert = SSL_get1_peer_certificate(impl_->stream.native_handle());
  if (cert == nullptr)
    return {};
  std::string text;
  if (BIGNUM* bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), nullptr)) {
    char* hex = BN_bn2hex(bn);
    text = hex;
    OPENSSL_free(hex);
    BN_free(bn);
  }
  X509_free(cert);
  return text;
}

std::string tls_client::version() const { return SSL_get_version(impl_->stream.native_handle()); }

std::string tls_client::cipher() const {
  return SSL_get_cipher_name(impl_->stream.native_handle());
}

int tls_client::key_exchange_bits() const {
  EVP_PKEY* key = nullptr;
  if (SSL_get_peer_tmp_key(impl_->stream.native_handle(), &key) != 1)
    return 0;
  const int bits = EVP_PKEY_get_bits(key);
  EVP_PKEY_free(key);
  return bits;
}

std::string tls_client::alpn() const {
  const unsigned char* data = nullptr;
  unsigned int size = 0;
  SSL_get0_alpn_selected(impl_->stream.native_handle(), &data, &size);
  return {reinterpret_cast<const char*>(data), size};
}

std::string handshake_error(std::uint16_t port, const tls_client_options& options) {
  try {
    tls_client c(port, options);
    // TLS 1.3 servers judge a client certificate after the client's side of the handshake
    // ended: a request shows whether the server kept the connection.
    (void)c.request("GET", "/healthz");
    return {};
  } catch (const std::exception& e) {
    return e.what();
  }
}

} // namespace tokengate::test
