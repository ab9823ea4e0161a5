#include "proxy/detail/shared_accept.hpp"

#include <boost/version.hpp>

#if BOOST_VERSION == 108100 && defined(BOOST_ASIO_HAS_EPOLL) &&                                    \
    !defined(BOOST_ASIO_HAS_IO_URING_AS_DEFAULT)

#include <boost/asio/detail/epoll_reactor.hpp>

#include <sys/epoll.h>

namespace tokengate::proxy::detail {
namespace {

namespace ad = boost::asio::detail;

// Asio keeps both the reactor's epoll descriptor and an acceptor's implementation private, with
// no accessor. An explicit instantiation may name a private member ([temp.spec.general]/6):
// `grant` is instantiated with a pointer to each, and hands it out through a friend function
// found by its tag.
template <class Tag, typename Tag::type Member> struct grant {
  friend typename Tag::type member(Tag) { return Member; }
};

struct epoll_descriptor {
  using type = int ad::epoll_reactor::*;
  friend type member(epoll_descriptor);
};
template struct grant<epoll_descriptor, &ad::epoll_reactor::epoll_fd_>;

struct acceptor_implementation {
  using type =
      ad::io_object_impl<ad::reactive_socket_service<tcp>, net::any_io_executor> tcp::acceptor::*;
  friend type member(acceptor_implementation);
};
template struct grant<acceptor_implementation, &tcp::acceptor::impl_>;

// What Asio's epoll_reactor::register_descriptor asks for a socket.
constexpr std::uint32_t asio_events = EPOLLIN | EPOLLERR | EPOLLHUP | EPOLLPRI | EPOLLET;
// EPOLLEXCLUSIVE takes no EPOLLPRI (EINVAL), which a listening socket never reports anyway.
constexpr std::uint32_t exclusive_events = EPOLLIN | EPOLLERR | EPOLLHUP | EPOLLET | EPOLLEXCLUSIVE;

} // namespace

bool wake_one_loop_per_connection(tcp::acceptor& acceptor) noexcept {
  auto& reactor = net::use_service<ad::epoll_reactor>(
      net::query(acceptor.get_executor(), net::execution::context));
  const int epoll = reactor.*member(epoll_descriptor{});
  auto& implementation = (acceptor.*member(acceptor_implementation{})).get_implementation();
  const int fd = acceptor.native_handle();
  // EPOLLEXCLUSIVE is given only when a descriptor is added, and the reactor finds its state
  // through the event's data: the descriptor is taken out and put back with the same data.
  // Asio never modifies a listening socket's registration (it would fail now: EINVAL); it
  // removes it when the acceptor closes.
  epoll_event event{};
  event.data.ptr = implementation.reactor_data_;
  if (::epoll_ctl(epoll, EPOLL_CTL_DEL, fd, &event) != 0)
    return false;
  event.events = exclusive_events;
  if (::epoll_ctl(epoll, EPOLL_CTL_ADD, fd, &event) == 0)
    return true;
  event.events = asio_events; // as Asio had it
  ::epoll_ctl(epoll, EPOLL_CTL_ADD, fd, &event);
  return false;
}

} // namespace tokengate::proxy::detail

#else

namespace tokengate::proxy::detail {

bool wake_one_loop_per_connection(tcp::acceptor&) noexcept { return false; }

} // namespace tokengate::proxy::detail

#endif
