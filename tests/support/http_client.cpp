#include "tests/support/http_client.hpp"

#include "tests/support/read_response.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <boost/json.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <stdexcept>

namespace tokengate::test {
namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;

bool iequal(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

} // namespace

std::optional<std::string> http_response::header(std::string_view name) const {
  for (const auto& [n, v] : headers)
    if (iequal(n, name))
      return v;
  return std::nullopt;
}

boost::json::value http_response::json() const {
  boost::system::error_code ec;
  auto v = boost::json::parse(body, ec);
  return ec ? boost::json::value() : v;
}

std::string http_response::message() const {
  auto v = json();
  if (auto* o = v.if_object())
    if (auto* m = o->if_contains("message"); m && m->is_string())
      return std::string(m->get_string());
  return {};
}

struct http_client::impl {
  net::io_context io;
  beast::tcp_stream stream{io};
  beast::flat_buffer buffer;
};

http_client::http_client(std::uint16_t port, std::string_view address)
    : impl_(std::make_unique<impl>()) {
  impl_->stream.connect(tcp::endpoint(net::ip::make_address(address), port));
  impl_->stream.socket().set_option(tcp::no_delay(true));
}

http_client::~http_client() = default;
http_client::http_client(http_client&&) noexcept = default;

http_response http_client::request(std::string_view method, std::string_view target,
                                   const header_list& headers, std::string_view body) {
  http::request<http::string_body> req{http::string_to_verb(method), target, 11};
  req.method_string(method);
  req.set(http::field::host, "127.0.0.1");
  for (const auto& [n, v] : headers)
    req.insert(n, v);
  if (!body.empty() || method == "POST" || method == "PUT") {
    req.body() = std::string(body);
    req.prepare_payload();
  }
  impl_->stream.expires_after(std::chrono::seconds(30));
  http::write(impl_->stream, req);

  return read_response(impl_->stream, impl_->buffer, method == "HEAD");
}

bool http_client::closed_by_peer(std::chrono::milliseconds wait) {
  impl_->stream.expires_after(wait);
  char c;
  boost::system::error_code ec;
  impl_->stream.read_some(net::buffer(&c, 1), ec);
  return ec == net::error::eof || ec == net::error::connection_reset;
}

http_response request(std::uint16_t port, std::string_view method, std::string_view target,
                      const header_list& headers, std::string_view body) {
  http_client c(port);
  return c.request(method, target, headers, body);
}

raw_connection::raw_connection(std::uint16_t port) {
  fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0)
    throw std::runtime_error("raw_connection: connect failed");
}

raw_connection::~raw_connection() {
  if (fd_ >= 0)
    ::close(fd_);
}

bool raw_connection::send(std::string_view bytes) {
  while (!bytes.empty()) {
    const auto n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (n <= 0)
      return false;
    bytes.remove_prefix(static_cast<std::size_t>(n));
  }
  return true;
}

std::string raw_connection::read_until(std::string_view marker, std::chrono::milliseconds wait) {
  std::string got;
  const auto deadline = std::chrono::steady_clock::now() + wait;
  while (marker.empty() || got.find(marker) == std::string::npos) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0)
      break;
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) <= 0)
      break;
    char buf[65536];
    const auto n = ::recv(fd_, buf, sizeof buf, 0);
    if (n <= 0)
      break;
    got.append(buf, static_cast<std::size_t>(n));
  }
  return got;
}

std::string raw_connection::read_until_close(std::chrono::milliseconds wait) {
  return read_until({}, wait);
}

bool peer_closed_within(int fd, std::chrono::milliseconds wait) {
  const auto deadline = std::chrono::steady_clock::now() + wait;
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0)
      return false;
    pollfd p{fd, POLLIN, 0};
    const int ready = ::poll(&p, 1, static_cast<int>(left.count()));
    if (ready == 0)
      return false;
    if (ready < 0) // interrupted: wait for what is left
      continue;
    char buf[4096];
    if (::recv(fd, buf, sizeof buf, 0) <= 0)
      return true;
  }
}

bool raw_connection::closed_within(std::chrono::milliseconds wait) {
  return peer_closed_within(fd_, wait);
}

void raw_connection::shutdown_send() { ::shutdown(fd_, SHUT_WR); }

unsigned status_of(std::string_view raw) {
  if (raw.size() < 12 || !raw.starts_with("HTTP/1."))
    return 0;
  return static_cast<unsigned>(std::stoul(std::string(raw.substr(9, 3))));
}

} // namespace tokengate::test
