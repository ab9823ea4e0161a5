#pragma once

#include <boost/json/value.hpp>

#include <array>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace tokengate::test {

using header_list = std::vector<std::pair<std::string, std::string>>;

struct http_response {
  unsigned status = 0;
  header_list headers;
  std::string body;
  bool keep_alive = true;

  [[nodiscard]] std::optional<std::string> header(std::string_view name) const;
  /// The body parsed as JSON (a null value when it is not JSON).
  [[nodiscard]] boost::json::value json() const;
  /// The body's "message" member, or "" (every error answer has one).
  [[nodiscard]] std::string message() const;
};

/// An HTTP/1.1 client on one keep-alive connection to 127.0.0.1, or to `address` (Boost.Beast).
class http_client {
public:
  explicit http_client(std::uint16_t port, std::string_view address = "127.0.0.1");
  ~http_client();
  http_client(http_client&&) noexcept;

  /// Sends a request and reads the whole answer. Throws on a transport error (a closed
  /// connection, a timeout after 30 s).
  http_response request(std::string_view method, std::string_view target,
                        const header_list& headers = {}, std::string_view body = {});

  /// Whether the server has closed the connection (a read sees EOF within `wait`).
  [[nodiscard]] bool
  closed_by_peer(std::chrono::milliseconds wait = std::chrono::milliseconds(2000));

private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

/// One request on a new connection.
http_response request(std::uint16_t port, std::string_view method, std::string_view target,
                      const header_list& headers = {}, std::string_view body = {});

/// A raw TCP connection for requests no well-behaved client would send.
class raw_connection {
public:
  explicit raw_connection(std::uint16_t port);
  ~raw_connection();
  raw_connection(const raw_connection&) = delete;
  raw_connection& operator=(const raw_connection&) = delete;

  /// Sends bytes; false if the peer has gone.
  bool send(std::string_view bytes);
  /// Reads until the peer closes or `wait` passes; returns what arrived.
  std::string read_until_close(std::chrono::milliseconds wait = std::chrono::milliseconds(3000));
  /// Reads until `marker` has arrived (or `wait` passes, or the peer closes).
  std::string read_until(std::string_view marker,
                         std::chrono::milliseconds wait = std::chrono::milliseconds(3000));
  /// True when the peer closed the connection within `wait` (anything sent first is dropped).
  bool closed_within(std::chrono::milliseconds wait);
  void shutdown_send();

private:
  int fd_ = -1;
};

/// True when the peer of socket `fd` closes it within `wait`; what arrives first is read and
/// dropped (a TLS alert, say).
[[nodiscard]] bool peer_closed_within(int fd, std::chrono::milliseconds wait);

/// The status code of the first response in `raw` ("HTTP/1.1 400 ..." -> 400), or 0.
[[nodiscard]] unsigned status_of(std::string_view raw);

/// What may come between two requests on a keep-alive connection, in pieces: an empty line,
/// another split after its CR, then `GET /public/x` with its head in three.
inline constexpr std::array<std::string_view, 5> next_request_in_pieces = {
    "\r\n", "\r", "\nGET /public/x HT", "TP/1.1\r\nHost: x\r\n", "\r\n"};

} // namespace tokengate::test
