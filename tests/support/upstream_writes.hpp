#pragma once

// How the test upstream writes its answers: as they are, or shaped the way some backends send
// them over TLS (records that arrive together, a session ticket behind an answer, close_notify
// before the close).
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/write.hpp>
#include <openssl/ssl.h>

#include <string>
#include <string_view>

namespace tokengate::test::upstream_writes {

namespace net = boost::asio;
using tcp = net::ip::tcp;

template <class Stream>
void write_raw(Stream& s, std::string_view bytes, boost::system::error_code& ec) {
  net::write(s, net::buffer(bytes.data(), bytes.size()), ec);
}

// Ends a connection's stream before the close: close_notify over TLS (answered or not).
inline void end_stream(tcp::socket&) {}
inline void end_stream(net::ssl::stream<tcp::socket&>& s) {
  boost::system::error_code ignored;
  s.shutdown(ignored);
}

// Ends the connection with a reset and no FIN (SO_LINGER of 0), as a crashed backend's kernel
// does.
inline void reset_stream(tcp::socket& s) {
  boost::system::error_code ignored;
  s.set_option(net::socket_base::linger(true, 0), ignored);
  s.close(ignored);
}
inline void reset_stream(net::ssl::stream<tcp::socket&>& s) { reset_stream(s.next_layer()); }

// `answer`, then a TLS 1.3 NewSessionTicket in the same TCP write (plain: the answer alone).
inline void write_with_ticket(tcp::socket& s, std::string_view answer,
                              boost::system::error_code& ec) {
  write_raw(s, answer, ec);
}
inline void write_with_ticket(net::ssl::stream<tcp::socket&>& s, std::string_view answer,
                              boost::system::error_code& ec) {
  std::size_t n = 0;
  if (SSL_write_ex(s.native_handle(), answer.data(), answer.size(), &n) != 1 ||
      SSL_new_session_ticket(s.native_handle()) != 1) {
    ec = net::error::broken_pipe;
    return;
  }
  // The handshake step writes the ticket and sends what the memory BIO holds: both records.
  s.handshake(net::ssl::stream_base::server, ec);
}

// `first` and then `second` in one TCP write: over TLS, two records that arrive together.
inline void write_together(tcp::socket& s, std::string_view first, std::string_view second,
                           boost::system::error_code& ec) {
  write_raw(s, std::string(first).append(second), ec);
}
inline void write_together(net::ssl::stream<tcp::socket&>& s, std::string_view first,
                           std::string_view second, boost::system::error_code& ec) {
  // SSL_write leaves its record in the stream's memory BIO; the next write sends both.
  std::size_t n = 0;
  if (SSL_write_ex(s.native_handle(), first.data(), first.size(), &n) != 1) {
    ec = net::error::broken_pipe;
    return;
  }
  write_raw(s, second, ec);
}

} // namespace tokengate::test::upstream_writes
