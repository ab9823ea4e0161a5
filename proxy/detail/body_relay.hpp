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
};

/// Per-connection scratch space of the relay, reused across bodies.
struct relay_scratch {
  http1::chunked_decoder decoder;
  std::string out;   ///< decoded and re-framed chunked data
  std::string frame; ///< a chunk header for data sent as it is
};

/// Streams one body from `from` (its buffered bytes first) to `to`. `in` says where the body
/// ends on the source (`length`: `remaining` more bytes; `none`: no body, `remaining` is 0;
/// `chunked`; `until_close`: EOF).
/// `chunk_out` frames the bytes as chunked on the way out (chunked input is decoded first);
/// otherwise they go as they are. `prefix` (a response head) goes out with the first bytes.
/// Bytes of the body are consumed from `from.buffer` once written.
template <class From, class To>
net::awaitable<relay_result> relay_body(timed_stream<From> from, timed_stream<To> to,
                                        http1::framing in, std::uint64_t remaining, bool chunk_out,
                                        std::string_view prefix, relay_scratch& scratch) {
  static constexpr std::string_view crlf = "\r\n";
  relay_result result;
  auto& buffer = from.buffer;
  scratch.decoder.reset();
  for (bool first = true;; first = false) {
    const std::string_view head = first ? prefix : std::string_view{};
    std::array<net::const_buffer, 4> parts{};
    std::size_t count = 0;
    std::size_t taken = 0; // bytes of `buffer` used by this round
    bool done = false;
    if (in.type == http1::framing::kind::chunked) {
      scratch.out.assign(head);
      while (taken < buffer.size() && !done) {
        const auto step = scratch.decoder.next(buffer.data().substr(taken));
        if (step.error)
          co_return relay_result{relay_error::framing, false, result.bytes};
        if (!step.data.empty()) {
          if (chunk_out)
            http1::append_chunk_header(scratch.out, step.data.size());
          scratch.out.append(step.data);
          if (chunk_out)
            scratch.out.append(crlf);
          result.bytes += step.data.size();
        }
        taken += step.consumed;
        done = step.done;
      }
      if (done && chunk_out)
        scratch.out.append(http1::last_chunk);
      parts[count++] = net::buffer(scratch.out);
    } else {
      // Data as it is, straight from the buffer: one gathered write, no copy.
      // No body (HEAD, 204, 304, none announced) is a body of length 0.
      const bool by_length = in.type != http1::framing::kind::until_close;
      taken = by_length
                  ? static_cast<std::size_t>(std::min<std::uint64_t>(buffer.size(), remaining))
                  : buffer.size();
      parts[count++] = net::buffer(head.data(), head.size());
      if (chunk_out && taken != 0) {
        scratch.frame.clear();
        http1::append_chunk_header(scratch.frame, taken);
        parts[count++] = net::buffer(scratch.frame);
      }
      parts[count++] = net::buffer(buffer.data().data(), taken);
      if (chunk_out && taken != 0)
        parts[count++] = net::buffer(crlf.data(), crlf.size());
      remaining -= by_length ? taken : 0;
      result.bytes += taken;
      done = by_length && remaining == 0;
    }
    if (net::buffer_size(parts) != 0 && !co_await to.write(parts))
      co_return relay_result{relay_error::sink, to.clock.timed_out, result.bytes};
    buffer.consume(taken);
    if (done)
      co_return result;
    const auto want =
        in.type == http1::framing::kind::length
            ? static_cast<std::size_t>(std::min<std::uint64_t>(remaining, relay_chunk))
            : relay_chunk;
    const auto r = co_await from.read(want);
    if (r.ec == net::error::eof && in.type == http1::framing::kind::until_close) {
      if (chunk_out && !co_await to.write(http1::last_chunk))
        co_return relay_result{relay_error::sink, to.clock.timed_out, result.bytes};
      co_return result;
    }
    if (!r)
      co_return relay_result{relay_error::source, r.timed_out, result.bytes};
  }
}

} // namespace tokengate::proxy::detail
