#include "proxy/detail/upstream_pool.hpp"

#include <sys/socket.h>

#include <cerrno>

namespace tokengate::proxy::detail {
namespace {

// True when the peer has neither closed the connection nor sent anything unasked.
bool still_usable(tcp::socket& s) {
  char probe;
  const auto n = ::recv(s.native_handle(), &probe, 1, MSG_PEEK | MSG_DONTWAIT);
  return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

} // namespace

upstream_pool::upstream_pool(net::io_context& io, std::size_t max_idle,
                             std::chrono::seconds max_idle_time)
    : io_(io), max_idle_(max_idle), max_idle_time_(max_idle_time) {}

std::unique_ptr<upstream_connection> upstream_pool::take(bool verify) {
  const auto now = coarse_now();
  while (!idle_.empty()) {
    auto c = std::move(idle_.back());
    idle_.pop_back();
    const auto idle = now - c->idle_since;
    if (idle < max_idle_time_ && ((!verify && idle < unchecked_reuse) || still_usable(c->socket)))
      return c;
    boost::system::error_code ignored;
    c->socket.close(ignored);
  }
  return nullptr;
}

std::unique_ptr<upstream_connection> upstream_pool::make() {
  return std::make_unique<upstream_connection>(io_.get_executor());
}

void upstream_pool::give_back(std::unique_ptr<upstream_connection> c) {
  if (idle_.size() >= max_idle_ || !c->buffer.empty()) {
    boost::system::error_code ignored;
    c->socket.close(ignored);
    return;
  }
  c->buffer.shrink(64 * 1024);
  c->idle_since = coarse_now();
  idle_.push_back(std::move(c));
}

} // namespace tokengate::proxy::detail
