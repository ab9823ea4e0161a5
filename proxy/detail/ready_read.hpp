#pragma once

// The reactor operation behind flex_stream::read_ready, and behind its handshake's waits and
// peek_ready, which try a handshake step or a look at the first bytes the same way. Included
// by flex_stream.cpp alone: it reaches into Asio's epoll reactor (boost/asio/detail), so it is
// written against the Boost this project builds with (1.81, Debian 12's) and compiled only
// there; with any other, read_ready, the handshake and peek_ready fall back to Asio's public
// wait and read.
//
// Why: Asio's epoll reactor registers a socket edge-triggered and keeps, per socket and kind
// of operation, whether to try an operation at once when it starts ("speculative"). A read
// starts with a try, a system call that finds nothing after an answer has just gone out; a
// wait (async_wait) re-arms the socket with epoll_ctl every time. The reactor skips the try,
// and does not re-arm, only after an operation reported that it took all the socket had
// (reactor_op::done_and_exhausted) and until epoll reports the socket again; Asio's own read
// reports that only at the end of the stream. This operation reports it when the kernel says
// its read left nothing (TCP_INQ, see report_unread_bytes in flex_stream.hpp): every segment
// that comes later wakes epoll, which sets the reactor trying again. A read that took the
// peer's FIN with the last bytes is told from one that emptied the socket (the kernel says 1
// then), so a close that came with them is read at the next try, not waited for. A reset
// right behind the last bytes is not counted by the kernel: epoll's report that woke the read
// carries it (EPOLLERR, EPOLLHUP), and a read so woken does not count as emptying. Nor does a
// read made as the operation starts (no report is at hand then), a read that leaves bytes,
// or one on a kernel that does not say: the reactor goes on trying, as with Asio's reads.

#include "proxy/detail/flex_stream.hpp"

#include <boost/version.hpp>

#if BOOST_VERSION == 108100 && defined(BOOST_ASIO_HAS_EPOLL) &&                                    \
    !defined(BOOST_ASIO_HAS_IO_URING_AS_DEFAULT)
#define TOKENGATE_READY_READ 1

#include <boost/asio/associated_cancellation_slot.hpp>
#include <boost/asio/detail/bind_handler.hpp>
#include <boost/asio/detail/epoll_reactor.hpp>
#include <boost/asio/detail/fenced_block.hpp>
#include <boost/asio/detail/handler_alloc_helpers.hpp>
#include <boost/asio/detail/handler_cont_helpers.hpp>
#include <boost/asio/detail/handler_work.hpp>
#include <boost/asio/detail/non_const_lvalue.hpp>
#include <boost/asio/detail/reactor_op.hpp>
#include <boost/asio/detail/socket_ops.hpp>

#include <cstdint>
#include <type_traits>

namespace tokengate::proxy::detail {

namespace ad = boost::asio::detail;

static_assert(static_cast<int>(ad::reactor_op::not_done) == 0 &&
              static_cast<int>(ad::reactor_op::done) == 1 &&
              static_cast<int>(ad::reactor_op::done_and_exhausted) == 2);

/// Cancels the operation from a cancellation slot, as Asio's socket operations do.
struct ready_read_cancellation {
  ad::epoll_reactor* reactor;
  ad::epoll_reactor::per_descriptor_data* data;
  int descriptor;

  void operator()(net::cancellation_type_t type) {
    if (!!(type & (net::cancellation_type::terminal | net::cancellation_type::partial |
                   net::cancellation_type::total)))
      reactor->cancel_ops_by_key(descriptor, *data, ad::epoll_reactor::read_op, this);
  }
};

/// The socket's protected implementation, reached through a pointer to the member, which a
/// derived class may form.
struct socket_access : tcp::socket {
  static constexpr auto member = &socket_access::impl_;
};

/// The epoll events the reactor is handing a socket's operations (a protected member of the
/// socket's reactor state, which holds them while they run).
struct task_result_access : ad::scheduler_operation {
  static constexpr auto member = &task_result_access::task_result_;
};

/// What the operation needs of flex_stream's insides.
struct ready_read_access {
  /// The socket's implementation: its descriptor, state and reactor registration.
  static auto& implementation(tcp::socket& socket) {
    return (socket.*socket_access::member).get_implementation();
  }

  static int try_step(flex_stream& s, ready_step step, flex_stream::read_target target,
                      boost::system::error_code& ec, std::size_t& n) {
    // 0 for the try as the operation starts: no event is being handed over then. Both this
    // and ready_read_starting_ rest on each event loop being run by one thread (worker.hpp).
    std::uint32_t events = 0;
    if (s.ready_read_starting_ && s.skip_starting_try_)
      return 0; // found nothing a moment ago, in this turn of the loop: wait for an event
    if (!s.ready_read_starting_) {
      // The socket's state derives from scheduler_operation privately: a C-style cast reaches
      // a private base as a static_cast would an accessible one.
      static_assert(
          std::is_base_of_v<ad::scheduler_operation, ad::epoll_reactor::descriptor_state>);
      const auto* state = (const ad::scheduler_operation*)(implementation(s.socket_).reactor_data_);
      events = state->*task_result_access::member;
    }
    return s.try_ready(step, target, events, ec, n);
  }

  static ad::epoll_reactor& reactor(flex_stream& s) {
    if (s.reactor_ == nullptr)
      s.reactor_ = &net::use_service<ad::epoll_reactor>(
          net::query(s.socket_.get_executor(), net::execution::context));
    return *static_cast<ad::epoll_reactor*>(s.reactor_);
  }

  template <class Handler>
  static void start(Handler& handler, flex_stream& s, ready_step step,
                    flex_stream::read_target target);
};

template <class Handler, class IoExecutor> class ready_read_op : public ad::reactor_op {
public:
  BOOST_ASIO_DEFINE_HANDLER_PTR(ready_read_op);

  ready_read_op(flex_stream& stream, ready_step step, flex_stream::read_target target,
                Handler& handler, const IoExecutor& io_ex)
      : ad::reactor_op(boost::system::error_code(), &ready_read_op::do_perform,
                       &ready_read_op::do_complete),
        stream_(&stream), step_(step), target_(target), handler_(std::move(handler)),
        work_(handler_, io_ex) {}

private:
  static status do_perform(ad::reactor_op* base) {
    auto* o = static_cast<ready_read_op*>(base);
    return static_cast<status>(ready_read_access::try_step(*o->stream_, o->step_, o->target_,
                                                           o->ec_, o->bytes_transferred_));
  }

  // As Asio's own operations complete: the memory goes back before the handler runs.
  static void do_complete(void* owner, ad::operation* base, const boost::system::error_code&,
                          std::size_t) {
    auto* o = static_cast<ready_read_op*>(base);
    ptr p = {std::addressof(o->handler_), o, o};
    ad::handler_work<Handler, IoExecutor> w(std::move(o->work_));
    ad::binder2<Handler, boost::system::error_code, std::size_t> handler(o->handler_, o->ec_,
                                                                         o->bytes_transferred_);
    p.h = std::addressof(handler.handler_);
    p.reset();
    if (owner) {
      ad::fenced_block b(ad::fenced_block::half);
      w.complete(handler, handler.handler_);
    }
  }

  flex_stream* stream_;
  ready_step step_;
  flex_stream::read_target target_;
  Handler handler_;
  ad::handler_work<Handler, IoExecutor> work_;
};

template <class Handler>
void ready_read_access::start(Handler& handler, flex_stream& s, ready_step step,
                              flex_stream::read_target target) {
  using op = ready_read_op<Handler, flex_stream::executor_type>;
  auto& impl = implementation(s.socket_);
  auto& reactor = ready_read_access::reactor(s);
  const bool is_continuation = boost_asio_handler_cont_helpers::is_continuation(handler);
  auto slot = net::get_associated_cancellation_slot(handler);
  // Only the start this caller asked for skips its try, whichever way it ends.
  struct clear_skip {
    flex_stream& s;
    ~clear_skip() { s.skip_starting_try_ = false; }
  } clear{s};
  typename op::ptr p = {std::addressof(handler), op::ptr::allocate(handler), nullptr};
  p.p = new (p.v) op(s, step, target, handler, s.socket_.get_executor());
  if (step != ready_step::handshake && target.take == nullptr && target.into.size() == 0) {
    // As Asio's reads: nothing asked, done at once, without waiting for an event.
    reactor.post_immediate_completion(p.p, is_continuation);
    p.v = p.p = nullptr;
    return;
  }
  if (slot.is_connected())
    p.p->cancellation_key_ = &slot.template emplace<ready_read_cancellation>(
        &reactor, &impl.reactor_data_, impl.socket_);
  // As Asio's socket operations start: the socket must be non-blocking for the try.
  if ((impl.state_ & ad::socket_ops::non_blocking) == 0 &&
      !ad::socket_ops::set_internal_non_blocking(impl.socket_, impl.state_, true, p.p->ec_)) {
    reactor.post_immediate_completion(p.p, is_continuation);
    p.v = p.p = nullptr;
    return;
  }
  // The reactor's try as the operation starts, if it makes one, runs inside start_op.
  s.ready_read_starting_ = true;
  reactor.start_op(ad::epoll_reactor::read_op, impl.socket_, impl.reactor_data_, p.p,
                   is_continuation, true);
  s.ready_read_starting_ = false;
  p.v = p.p = nullptr;
}

/// Starts a ready operation: a read, a handshake step or a peek (ready_step).
struct initiate_ready_read {
  template <class Handler>
  void operator()(Handler&& handler, flex_stream* s, ready_step step,
                  flex_stream::read_target target) const {
    ad::non_const_lvalue<Handler> h(handler);
    ready_read_access::start(h.value, *s, step, target);
  }
};

} // namespace tokengate::proxy::detail

#endif
