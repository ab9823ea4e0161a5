#pragma once

#include "proxy/detail/net.hpp"

namespace tokengate::proxy::detail {

/// Every event loop accepts the main listener's connections itself, from its own descriptor of
/// the one listening socket (dup), as nginx's workers do; a connection is served by the loop
/// that accepted it. A loop that is busy, or whose thread the system has not given a CPU at
/// that moment (a sidecar shares its pod's CPUs), is passed over rather than handed
/// connections it cannot yet serve.
///
/// Registers `acceptor`'s descriptor in its loop's epoll with EPOLLEXCLUSIVE, so that a new
/// connection wakes one of the loops waiting in epoll_wait, not every one of them; the loops
/// that are busy find it at their next wait. True when done. It reaches into Asio's epoll
/// reactor (shared_accept.cpp), so it is done only with the Boost this project builds with
/// (1.81, Debian 12's); elsewhere, or on a kernel without EPOLLEXCLUSIVE (before Linux 4.5),
/// false: the registration stays Asio's, every waiting loop wakes for each connection and all
/// but one find nothing, which is correct, only dearer with many loops.
bool wake_one_loop_per_connection(tcp::acceptor& acceptor) noexcept;

} // namespace tokengate::proxy::detail
