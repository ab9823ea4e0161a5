#pragma once

// The one framed body relay, for request bodies (client to upstream) and response bodies
// (upstream to client), as Beast's relay<isRequest> is one routine for both directions.

#include "proxy/chunked.hpp"
#include "proxy/detail/stream_io.hpp"
#include "proxy/http1.hpp"

#include <string>

namespace tokengate::proxy::detail {

inline constexpr std::size_t relay_chunk = 64 * 1024; ///< the most read from a source at once

enum class relay_error : std::uint8_t {
  none,
  source,  ///< reading failed (peer gone, reset, timed out) before the body ended
  sink,    ///< writing failed
  framing, ///< malformed chunked framing from the source
};

struct relay_result {
  relay_error error = relay_error::none;
  bool timed_out = false;  ///< the failed wait ran past the deadline
  std::uint64_t bytes = 0; ///< body bytes taken from the source (framing not counted)
  bool started = false;    ///< something (the prefix at least) went to the sink
};

/// Per-connection scratch space of the relay, reused across bodies.
struct relay_scratch {
  http1::chunked_decoder decoder;
  std::string out;   ///< decoded and re-framed chunked data
  std::string frame; ///< a chunk header for data sent as it is
};

/// What one round of the relay takes from the source's buffer and sends.
struct relay_round {
  std::array<net::const_buffer, 4> parts{}; ///< to write, in order
  std::size_t taken = 0;                    ///< bytes of the source's buffer used
  bool done = false;                        ///< the body ended within them
  bool malformed = false;                   ///< bad chunked framing
};

/// A round of chunked input: decoded (and re-chunked when `chunk_out`) into `scratch.out`,
/// after `head`.
inline relay_round chunked_round(std::string_view buffered, std::string_view head, bool chunk_out,
                                 relay_scratch& scratch, std::uint64_t& bytes) {
  relay_round round;
  scratch.out.assign(head);
  while (round.taken < buffered.size() && !round.done) {
    const auto step = scratch.decoder.next(buffered.substr(round.taken));
    if (!step) {
      round.malformed = true;
      return round;
    }
    if (!step->data.empty()) {
      if (chunk_out)
        http1::append_chunk_header(scratch.out, step->data.size());
      scratch.out.append(step->data);
      if (chunk_out)
        scratch.out.append("\r\n");
      bytes += step->data.size();
    }
    round.taken += step->consumed;
    round.done = step->done;
  }
  if (round.done && chunk_out)
    scratch.out.append(http1::last_chunk);
  round.parts[0] = net::buffer(scratch.out);
  return round;
}

/// A round of input taken as it is (by length, or until close): one gathered write of `head`,
/// a chunk header when `chunk_out`, and the bytes straight from the buffer, with no copy.
inline relay_round raw_round(std::string_view buffered, std::string_view head,
                             std::uint64_t* remaining, bool chunk_out, relay_scratch& scratch) {
  static constexpr std::string_view crlf = "\r\n";
  relay_round round;
  round.taken = remaining
                    ? static_cast<std::size_t>(std::min<std::uint64_t>(buffered.size(), *remaining))
                    : buffered.size();
  std::size_t n = 0;
  round.parts[n++] = net::buffer(head.data(), head.size());
  if (chunk_out && round.taken != 0) {
    scratch.frame.clear();
    http1::append_chunk_header(scratch.frame, round.taken);
    round.parts[n++] = net::buffer(scratch.frame);
  }
  round.parts[n++] = net::buffer(buffered.data(), round.taken);
  if (chunk_out && round.taken != 0)
    round.parts[n++] = net::buffer(crlf.data(), crlf.size());
  if (remaining) {
    *remaining -= round.taken;
    round.done = *remaining == 0;
  }
  return round;
}

/// Whether the reads of a body of known length may take bytes past its end.
enum class past_end {
  /// They stop at its last byte: a client's next request, pipelined, is read when it is due.
  stop,
  /// They take at least a byte more, when it has come: nothing should follow an upstream's
  /// answer, and what a broken upstream sends there stays in the buffer, where
  /// upstream_pool::give_back sees it and closes the connection instead of pooling it.
  take,
};

/// Streams one body from `from` (its buffered bytes first) to `to`. `in` says where the body
/// ends on the source (`length`: `remaining` more bytes, read as `after` says; `none`: no body,
/// `remaining` is 0; `chunked`; `until_close`: EOF). `chunk_out` frames the bytes as chunked on
/// the way out (chunked input is decoded first); otherwise they go as they are. `prefix` (a
/// response head) goes out with the first bytes. Bytes of the body are consumed from
/// `from.buffer` once written.
template <class From, class To>
net::awaitable<relay_result>
relay_body(timed_stream<From> from, timed_stream<To> to, http1::framing in, std::uint64_t remaining,
           past_end after, bool chunk_out, std::string_view prefix, relay_scratch& scratch) {
  using kind = http1::framing::kind;
  relay_result result;
  scratch.decoder.reset();
  for (bool first = true;; first = false) {
    const std::string_view head = first ? prefix : std::string_view{};
    const auto buffered = from.buffer.data();
    // No body (HEAD, 204, 304, none announced) is a body of length 0.
    const auto round =
        in.type == kind::chunked
            ? chunked_round(buffered, head, chunk_out, scratch, result.bytes)
            : raw_round(buffered, head, in.type == kind::until_close ? nullptr : &remaining,
                        chunk_out, scratch);
    if (round.malformed)
      co_return relay_result{relay_error::framing, false, result.bytes, result.started};
    if (in.type != kind::chunked)
      result.bytes += round.taken;
    if (net::buffer_size(round.parts) != 0) {
      result.started = true;
      if (!co_await to.write(round.parts))
        co_return relay_result{relay_error::sink, to.clock.timed_out, result.bytes, true};
    }
    from.buffer.consume(round.taken);
    if (round.done)
      co_return result;
    const auto to_end = static_cast<std::size_t>(std::min<std::uint64_t>(remaining, relay_chunk));
    // Past the end: one byte more, or the room the buffer has anyway (no larger buffer for it).
    const auto want = in.type != kind::length ? relay_chunk
                      : after == past_end::stop
                          ? to_end
                          : std::min(relay_chunk, std::max(to_end + 1, from.buffer.capacity() -
                                                                           from.buffer.size()));
    const auto r = co_await from.read(want);
    if (r.ec == net::error::eof && in.type == kind::until_close) {
      if (chunk_out && !co_await to.write(http1::last_chunk))
        co_return relay_result{relay_error::sink, to.clock.timed_out, result.bytes, true};
      co_return result;
    }
    if (!r)
      co_return relay_result{relay_error::source, r.timed_out, result.bytes, result.started};
  }
}

} // namespace tokengate::proxy::detail
