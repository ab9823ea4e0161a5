// The stand-in backend, written with Boost.Beast: an HTTP implementation independent of the
// proxy's own parser, so each checks the other.
#include "tests/support/test_upstream.hpp"
#include "tests/support/upstream_writes.hpp"

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <boost/json.hpp>

#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <charconv>
#include <chrono>
#include <stdexcept>
#include <thread>

namespace tokengate::test {
namespace {

namespace net = boost::asio;
namespace http = boost::beast::http;
using tcp = net::ip::tcp;
using upstream_writes::end_stream;
using upstream_writes::reset_stream;
using upstream_writes::write_raw;
using upstream_writes::write_together;
using upstream_writes::write_with_ticket;

constexpr std::size_t kept_body = 64 * 1024;

bool iequal(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

std::uint64_t query_number(std::string_view target, std::string_view name) {
  const auto key = std::string(name) + "=";
  const auto at = target.find(key);
  if (at == std::string_view::npos)
    return 0;
  std::uint64_t n = 0;
  const auto begin = target.data() + at + key.size();
  std::from_chars(begin, target.data() + target.size(), n);
  return n;
}

// The last segment of a target's path ("/public/slow?ms=5" -> "/slow"): what picks a behaviour,
// so any route prefix can lead to it.
std::string_view last_segment(std::string_view target) {
  target = target.substr(0, target.find('?'));
  const auto slash = target.rfind('/');
  return slash == std::string_view::npos ? target : target.substr(slash);
}

std::string echo_json(const seen_request& r) {
  boost::json::array headers;
  for (const auto& [n, v] : r.headers)
    headers.push_back(boost::json::array{boost::json::string(n), boost::json::string(v)});
  return boost::json::serialize(boost::json::object{{"method", r.method},
                                                    {"target", r.target},
                                                    {"headers", std::move(headers)},
                                                    {"body_bytes", r.body_bytes},
                                                    {"body_hash", r.body_hash}});
}

// The SNI name and the client certificate of a server-side TLS connection.
seen_tls tls_facts(SSL* ssl) {
  seen_tls t;
  if (const char* name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name))
    t.server_name = name;
  X509* cert = SSL_get1_peer_certificate(ssl);
  if (cert == nullptr)
    return t;
  BIO* bio = BIO_new(BIO_s_mem());
  X509_NAME_print_ex(bio, X509_get_subject_name(cert), 0, XN_FLAG_RFC2253);
  char* data = nullptr;
  const auto size = BIO_get_mem_data(bio, &data);
  t.client_subject.assign(data, static_cast<std::size_t>(size > 0 ? size : 0));
  BIO_free(bio);
  if (BIGNUM* bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), nullptr)) {
    char* hex = BN_bn2hex(bn);
    t.client_serial = hex;
    OPENSSL_free(hex);
    BN_free(bn);
  }
  X509_free(cert);
  return t;
}

} // namespace

std::uint64_t fnv1a(std::string_view bytes, std::uint64_t h) {
  for (unsigned char c : bytes) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

std::optional<std::string> seen_request::header(std::string_view name) const {
  for (const auto& [n, v] : headers)
    if (iequal(n, name))
      return v;
  return std::nullopt;
}

std::size_t seen_request::count(std::string_view name) const {
  std::size_t c = 0;
  for (const auto& h : headers)
    c += iequal(h.first, name) ? 1 : 0;
  return c;
}

struct test_upstream::impl {
  impl(std::uint16_t port, const upstream_tls_files& files)
      : acceptor(io, {net::ip::make_address("127.0.0.1"), port}) {
    if (files.cert_file.empty())
      return;
    tls.emplace(net::ssl::context::tls_server);
    tls->use_certificate_chain_file(files.cert_file);
    tls->use_private_key_file(files.key_file, net::ssl::context::pem);
    if (!files.client_ca_file.empty()) {
      tls->load_verify_file(files.client_ca_file);
      tls->set_verify_mode(net::ssl::verify_peer | net::ssl::verify_fail_if_no_peer_cert);
      // Without it OpenSSL refuses to resume a verified client's session (an internal error).
      static constexpr unsigned char id[] = "test-upstream";
      SSL_CTX_set_session_id_context(tls->native_handle(), id, sizeof id - 1);
    }
  }

  // Serves one connection, over TLS when the upstream speaks it.
  void serve_connection(tcp::socket& socket) {
    if (!tls) {
      serve(socket);
      return;
    }
    net::ssl::stream<tcp::socket&> stream(socket, *tls);
    boost::system::error_code ec;
    stream.handshake(net::ssl::stream_base::server, ec);
    if (ec)
      return;
    ++tls_handshakes;
    if (SSL_session_reused(stream.native_handle()))
      ++tls_resumed;
    serve(stream, tls_facts(stream.native_handle()));
  }

  void accept_loop() {
    for (;;) {
      boost::system::error_code ec;
      auto socket = std::make_shared<tcp::socket>(io);
      acceptor.accept(*socket, ec);
      if (stopping)
        return;
      if (ec)
        continue;
      ++connections;
      std::lock_guard lock(mutex);
      sockets.push_back(socket);
      threads.emplace_back([this, socket] {
        serve_connection(*socket);
        // Close under the lock, so stop() never touches a descriptor number reused since.
        std::lock_guard done(mutex);
        std::erase(sockets, socket);
        boost::system::error_code ignored;
        socket->shutdown(tcp::socket::shutdown_both, ignored);
        socket->close(ignored);
      });
    }
  }

  void record(const seen_request& r) {
    std::lock_guard lock(mutex);
    if (seen.size() == 10'000) // a long-running demo upstream must not grow without bound
      seen.erase(seen.begin());
    seen.push_back(r);
  }

  template <class Stream> void serve(Stream& socket, const seen_tls& handshake = {}) {
    boost::beast::flat_buffer buffer;
    std::vector<char> chunk(64 * 1024);
    for (;;) {
      boost::system::error_code ec;
      http::request_parser<http::buffer_body> parser;
      parser.body_limit(boost::none);
      http::read_header(socket, buffer, parser, ec);
      if (ec) {
        if (ec == http::error::end_of_stream || ec == net::ssl::error::stream_truncated)
          ++closed_idle;
        if constexpr (!std::is_same_v<Stream, tcp::socket>) {
          if (ec == http::error::end_of_stream) // the client's close_notify, between requests
            ++tls_closed_with_notify;
          else if (ec == net::ssl::error::stream_truncated)
            ++tls_closed_without_notify;
        }
        return;
      }
      seen_request r;
      r.tls = handshake;
      const auto& head = parser.get();
      r.method = std::string(head.method_string());
      r.target = std::string(head.target());
      for (const auto& f : head)
        r.headers.emplace_back(std::string(f.name_string()), std::string(f.value()));
      r.body_hash = fnv1a({});
      const bool answer_first = last_segment(r.target) == "/answer-first";
      if (answer_first)
        write_raw(socket, std::string(answered_first), ec);
      while (!ec && !parser.is_done()) {
        parser.get().body().data = chunk.data();
        parser.get().body().size = chunk.size();
        http::read(socket, buffer, parser, ec);
        if (ec == http::error::need_buffer)
          ec = {};
        if (ec)
          return;
        const auto got = chunk.size() - parser.get().body().size;
        const std::string_view bytes(chunk.data(), got);
        r.body_bytes += got;
        r.body_hash = fnv1a(bytes, r.body_hash);
        if (r.body.size() < kept_body)
          r.body.append(bytes.substr(0, kept_body - r.body.size()));
      }
      record(r);
      if (answer_first ? ec || !parser.get().keep_alive()
                       : !respond(socket, r, parser.get().keep_alive(), chunk))
        return;
    }
  }

  // Answers one request; false when the connection must end.
  template <class Stream>
  bool respond(Stream& socket, const seen_request& r, bool keep_alive, std::vector<char>& chunk) {
    boost::system::error_code ec;
    const std::string_view whole_path = std::string_view(r.target).substr(0, r.target.find('?'));
    const auto status_at = whole_path.find("/status/");
    const auto status_text =
        status_at == std::string_view::npos ? "" : whole_path.substr(status_at + 8);
    const auto path = last_segment(r.target);
    if (path == "/slow")
      std::this_thread::sleep_for(std::chrono::milliseconds(query_number(r.target, "ms")));
    if (path == "/download")
      return download(socket, r, keep_alive, chunk);
    if (path == "/hang-up")
      return false; // recorded, then closed without an answer: a crashed or restarting backend
    if (path == "/close") {
      write_raw(socket, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n" + echo_json(r),
                ec);
      if (!ec && query_number(r.target, "cut") != 1)
        end_stream(socket);
      return false;
    }
    if (path == "/stray-after" || path == "/ticket-after") {
      // A whole keep-alive answer with, right behind it in the same TCP write, a stray 408 (a
      // broken backend: never the answer to a later request) or a TLS 1.3 session ticket.
      const auto body = echo_json(r);
      const auto whole = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: " +
                         std::to_string(body.size()) + "\r\n\r\n" + body;
      if (path == "/stray-after")
        write_together(socket, whole, "HTTP/1.1 408 Request Timeout\r\nContent-Length: 0\r\n\r\n",
                       ec);
      else
        write_with_ticket(socket, whole, ec);
      return !ec && keep_alive;
    }
    if (path == "/early-hints") {
      write_raw(socket, "HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n", ec);
      if (ec)
        return false;
    }
    if (path == "/hints") {
      // `n` interim answers, `ms` apart, before the echo: an upstream that keeps a client
      // waiting with 103s.
      const auto interval = std::chrono::milliseconds(query_number(r.target, "ms"));
      for (auto n = query_number(r.target, "n"); n > 0 && !ec; --n) {
        std::this_thread::sleep_for(interval);
        write_raw(socket, "HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n", ec);
      }
      if (ec)
        return false;
    }
    if (path == "/reset-after-part") {
      // A head promising 1000 bytes and 10 of them, then a reset: a backend that crashed in
      // the middle of an answer. (Closed under the lock, as the accept loop closes.)
      write_raw(socket, "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n0123456789", ec);
      std::lock_guard lock(mutex);
      reset_stream(socket);
      return false;
    }
    if (path == "/bad-chunk") {
      // A chunked answer whose first chunk size is not hex, sent with its head.
      write_raw(socket,
                "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nZZ\r\nxx\r\n0\r\n\r\n", ec);
      return false;
    }
    if (path == "/switch") {
      // 101 Switching Protocols though no upgrade was asked for, then bytes of "another
      // protocol".
      write_raw(socket,
                "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: x\r\n\r\n"
                "other protocol",
                ec);
      std::this_thread::sleep_for(std::chrono::milliseconds(500));
      return false;
    }
    if (path == "/stall-body") {
      // A 200 of 10 bytes whose first 5 come with the head, the rest `ms` later.
      write_raw(socket, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nfirst", ec);
      std::this_thread::sleep_for(std::chrono::milliseconds(query_number(r.target, "ms")));
      write_raw(socket, "later", ec);
      return !ec && keep_alive;
    }
    if (path == "/big-head") {
      // A whole head of `kib` KiB, in one write: one long field.
      const auto value = std::string(query_number(r.target, "kib") * 1024, 'v');
      write_raw(socket, "HTTP/1.1 200 OK\r\nX-Big: " + value + "\r\nContent-Length: 2\r\n\r\nok",
                ec);
      return !ec && keep_alive;
    }
    if (path == "/trickle-head") {
      // The echo's head a byte every `ms`: an upstream slower than its timeout, yet never
      // pausing for as long.
      const auto body = echo_json(r);
      const auto head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: " +
                        std::to_string(body.size()) + "\r\n\r\n";
      const auto interval = std::chrono::milliseconds(query_number(r.target, "ms"));
      for (std::size_t i = 0; i < head.size() && !ec; ++i) {
        write_raw(socket, std::string_view(head).substr(i, 1), ec);
        std::this_thread::sleep_for(interval);
      }
      write_raw(socket, body, ec);
      return !ec && keep_alive;
    }
    if (path == "/late-after" || path == "/no-content-late") {
      // A whole keep-alive answer (the echo, or a 204 that announces a body) and then, while
      // the connection is idle, a late answer of a broken backend: never the answer to a
      // later request, which this connection goes on to serve.
      if (path == "/late-after") {
        const auto body = echo_json(r);
        write_raw(socket,
                  "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: " +
                      std::to_string(body.size()) + "\r\n\r\n" + body,
                  ec);
      } else {
        write_raw(socket, "HTTP/1.1 204 No Content\r\nContent-Length: 38\r\n\r\n", ec);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(query_number(r.target, "ms")));
      write_raw(socket, "HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nLATE-BODY", ec);
      return !ec && keep_alive;
    }
    unsigned status = 200;
    if (!status_text.empty())
      status = static_cast<unsigned>(std::stoul(std::string(status_text)));
    return answer(socket, r, keep_alive, status, path);
  }

  // The ordinary answer: the echo as JSON with `status` (none for HEAD, 204 and 304), then what
  // the path asks to happen on the idle connection. False when the connection must end.
  template <class Stream>
  bool answer(Stream& socket, const seen_request& r, bool keep_alive, unsigned status,
              std::string_view path) {
    boost::system::error_code ec;
    if (r.method == "HEAD" || status == 204 || status == 304) {
      http::response<http::empty_body> res{static_cast<http::status>(status), 11};
      res.keep_alive(keep_alive);
      if (r.method == "HEAD")
        res.content_length(echo_json(r).size());
      http::write(socket, res, ec);
      return !ec && keep_alive;
    }
    http::response<http::string_body> res{static_cast<http::status>(status), 11};
    res.set(http::field::content_type, "application/json");
    res.set("X-Upstream", "test");
    res.keep_alive(keep_alive);
    res.body() = echo_json(r);
    if (path == "/chunked")
      res.chunked(true);
    else
      res.prepare_payload();
    http::write(socket, res, ec);
    if (path == "/timeout-after") {
      // Answered as keep-alive, then, while idle, a 408 and a close: what some backends send
      // when their idle timeout ends a connection.
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      write_raw(socket,
                "HTTP/1.1 408 Request Timeout\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                ec);
      return false;
    }
    if (path == "/drop-after") {
      // Answered as keep-alive, then closed while idle: what a backend's idle timeout does.
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      return false;
    }
    return !ec && keep_alive;
  }

  template <class Stream>
  bool download(Stream& socket, const seen_request& r, bool keep_alive, std::vector<char>& chunk) {
    const auto total = query_number(r.target, "bytes");
    boost::system::error_code ec;
    if (query_number(r.target, "stray") == 1) {
      // The whole answer, and a stray 408 right behind it in the same write.
      std::string whole = "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
                          "Content-Length: " +
                          std::to_string(total) + "\r\n\r\n";
      for (std::uint64_t i = 0; i < total; ++i)
        whole += pattern_byte(i);
      write_together(socket, whole, "HTTP/1.1 408 Request Timeout\r\nContent-Length: 0\r\n\r\n",
                     ec);
      return !ec && keep_alive;
    }
    http::response<http::buffer_body> res{http::status::ok, 11};
    res.set(http::field::content_type, "application/octet-stream");
    res.keep_alive(keep_alive);
    if (query_number(r.target, "chunked") == 1)
      res.chunked(true);
    else
      res.content_length(total);
    http::response_serializer<http::buffer_body> sr{res};
    http::write_header(socket, sr, ec);
    if (ec)
      return false;
    for (std::uint64_t sent = 0; sent < total;) {
      const auto n = static_cast<std::size_t>(std::min<std::uint64_t>(chunk.size(), total - sent));
      for (std::size_t i = 0; i < n; ++i)
        chunk[i] = pattern_byte(sent + i);
      res.body().data = chunk.data();
      res.body().size = n;
      res.body().more = true;
      http::write(socket, sr, ec);
      if (ec == http::error::need_buffer)
        ec = {};
      if (ec)
        return false;
      sent += n;
    }
    res.body().data = nullptr;
    res.body().size = 0;
    res.body().more = false;
    http::write(socket, sr, ec);
    return !ec && keep_alive;
  }

  void stop() {
    stopping = true;
    // Wakes the blocked accept(); then ends every connection.
    ::shutdown(acceptor.native_handle(), SHUT_RDWR);
    if (accept_thread.joinable())
      accept_thread.join();
    std::vector<std::thread> to_join;
    {
      std::lock_guard lock(mutex);
      for (auto& s : sockets)
        ::shutdown(s->native_handle(), SHUT_RDWR);
      to_join.swap(threads);
    }
    for (auto& t : to_join)
      t.join();
  }

  net::io_context io;
  tcp::acceptor acceptor;
  std::optional<net::ssl::context> tls;
  std::atomic<std::size_t> tls_handshakes{0};
  std::atomic<std::size_t> tls_resumed{0};
  std::atomic<std::size_t> tls_closed_with_notify{0};
  std::atomic<std::size_t> tls_closed_without_notify{0};
  std::atomic<std::size_t> closed_idle{0};
  std::thread accept_thread;
  std::atomic<bool> stopping{false};
  std::atomic<std::size_t> connections{0};
  mutable std::mutex mutex;
  std::vector<seen_request> seen;
  std::vector<std::shared_ptr<tcp::socket>> sockets;
  std::vector<std::thread> threads;
};

test_upstream::test_upstream(std::uint16_t port, const upstream_tls_files& tls)
    : impl_(std::make_unique<impl>(port, tls)) {
  impl_->accept_thread = std::thread([this] { impl_->accept_loop(); });
}

test_upstream::~test_upstream() { impl_->stop(); }

std::uint16_t test_upstream::port() const { return impl_->acceptor.local_endpoint().port(); }

std::vector<seen_request> test_upstream::requests() const {
  std::lock_guard lock(impl_->mutex);
  return impl_->seen;
}

seen_request test_upstream::last() const {
  std::lock_guard lock(impl_->mutex);
  return impl_->seen.empty() ? seen_request{} : impl_->seen.back();
}

std::size_t test_upstream::connections() const { return impl_->connections; }

std::size_t test_upstream::tls_handshakes() const { return impl_->tls_handshakes; }

std::size_t test_upstream::tls_resumed() const { return impl_->tls_resumed; }

std::size_t test_upstream::closed_idle() const { return impl_->closed_idle; }

bool test_upstream::closed_idle_reaches(std::size_t n, std::chrono::milliseconds wait) const {
  const auto until = std::chrono::steady_clock::now() + wait;
  while (impl_->closed_idle < n && std::chrono::steady_clock::now() < until)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  return impl_->closed_idle >= n;
}
std::size_t test_upstream::tls_closed_with_notify() const { return impl_->tls_closed_with_notify; }

std::size_t test_upstream::tls_closed_without_notify() const {
  return impl_->tls_closed_without_notify;
}

void test_upstream::clear() {
  std::lock_guard lock(impl_->mutex);
  impl_->seen.clear();
}

void test_upstream::wait() { impl_->accept_thread.join(); }

black_hole::black_hole() {
  listener_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof address;
  const auto* any = reinterpret_cast<sockaddr*>(&address);
  if (listener_ < 0 || ::bind(listener_, any, sizeof address) != 0 || ::listen(listener_, 0) != 0 ||
      ::getsockname(listener_, reinterpret_cast<sockaddr*>(&address), &length) != 0)
    throw std::runtime_error("black_hole: cannot listen");
  port_ = ntohs(address.sin_port);
  // A backlog of 0 queues one connection: once it is made, the queue is full.
  const int filler = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  fillers_.push_back(filler);
  if (filler < 0 || ::connect(filler, any, sizeof address) != 0)
    throw std::runtime_error("black_hole: cannot fill the queue");
}

black_hole::~black_hole() {
  for (int fd : fillers_)
    if (fd >= 0)
      ::close(fd);
  ::close(listener_);
}

} // namespace tokengate::test
