#pragma once

// A connection that is plain TCP or TLS over TCP, decided when it starts: one stream type for
// the session and the upstream exchange instead of a second copy of either. A plain
// connection costs one branch per operation; a TLS one adds the TLS layer on the same socket.

#include "proxy/detail/net.hpp"

#include <memory>

namespace tokengate::proxy::detail {

using tls_stream = net::ssl::stream<tcp::socket&>;

class flex_stream {
public:
  using executor_type = tcp::socket::executor_type;

  explicit flex_stream(tcp::socket socket) : socket_(std::move(socket)) {}
  explicit flex_stream(const net::any_io_executor& ex) : socket_(ex) {}
  // The TLS layer refers to socket_: the stream never moves.
  flex_stream(const flex_stream&) = delete;
  flex_stream& operator=(const flex_stream&) = delete;

  executor_type get_executor() { return socket_.get_executor(); }

  /// The TCP socket: for connect, options, shutdown and close, and for plain I/O.
  tcp::socket& socket() noexcept { return socket_; }
  /// The TLS layer, or nullptr on a plain connection.
  tls_stream* tls() noexcept { return tls_.get(); }
  [[nodiscard]] bool is_tls() const noexcept { return tls_ != nullptr; }

  /// Puts a TLS layer made from `context` over the socket (before the handshake). The context
  /// must outlive the layer.
  tls_stream& start_tls(net::ssl::context& context) {
    tls_ = std::make_unique<tls_stream>(socket_, context);
    return *tls_;
  }

  template <class MutableBuffers, class Token>
  auto async_read_some(const MutableBuffers& buffers, Token&& token) {
    return net::async_initiate<Token, void(boost::system::error_code, std::size_t)>(
        [this](auto handler, const MutableBuffers& b) {
          if (tls_)
            tls_->async_read_some(b, std::move(handler));
          else
            socket_.async_read_some(b, std::move(handler));
        },
        token, buffers);
  }

  template <class ConstBuffers, class Token>
  auto async_write_some(const ConstBuffers& buffers, Token&& token) {
    return net::async_initiate<Token, void(boost::system::error_code, std::size_t)>(
        [this](auto handler, const ConstBuffers& b) {
          if (tls_)
            tls_->async_write_some(b, std::move(handler));
          else
            socket_.async_write_some(b, std::move(handler));
        },
        token, buffers);
  }

  /// Cancels the socket's waits (a TLS operation waits on the socket too).
  void cancel() noexcept {
    boost::system::error_code ignored;
    socket_.cancel(ignored);
  }

  /// Closes the socket (the TLS layer, if any, goes with the stream).
  void close() noexcept {
    boost::system::error_code ignored;
    socket_.close(ignored);
  }

private:
  tcp::socket socket_;
  std::unique_ptr<tls_stream> tls_;
};

} // namespace tokengate::proxy::detail
