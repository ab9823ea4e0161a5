#include "proxy/chunked.hpp"

#include "proxy/http1.hpp"

#include <algorithm>
#include <stdexcept>
#include <string>

namespace tokengate::proxy::http1 {
namespace {

// Characters allowed inside a chunk extension or a trailer line: no controls but HTAB.
bool is_line_char(char c) noexcept {
  const auto u = static_cast<unsigned char>(c);
  return u == '\t' || (u >= 0x20 && u != 0x7f);
}

} // namespace

boost::system::result<chunk_step, chunked_error>
chunked_decoder::next(std::string_view in) noexcept {
  chunk_step r;
  std::size_t i = 0;
  while (i < in.size() && state_ != state::done) {
    if (state_ == state::data) {
      const auto n = static_cast<std::size_t>(
          std::min<std::uint64_t>(remaining_, static_cast<std::uint64_t>(in.size() - i)));
      r.data = in.substr(i, n);
      remaining_ -= n;
      if (remaining_ == 0)
        state_ = state::data_cr;
      r.consumed = i + n;
      return r;
    }
    if (state_ == state::failed)
      return error_;
    const bool in_size = state_ == state::size;
    if (!(is_size_line() ? size_line(in[i]) : framing_line(in[i]))) {
      if (error_ != chunked_error::too_long)
        error_ = in_size ? chunked_error::bad_size : chunked_error::bad_framing;
      state_ = state::failed;
      return error_;
    }
    ++i;
  }
  r.consumed = i;
  r.done = state_ == state::done;
  return r;
}

bool chunked_decoder::is_size_line() const noexcept {
  return state_ == state::size || state_ == state::size_ws || state_ == state::extension ||
         state_ == state::size_lf;
}

bool chunked_decoder::size_line(char c) noexcept {
  const bool ws = c == ' ' || c == '\t';
  switch (state_) {
  case state::size:
    if (const int v = hex_value(c); v >= 0) {
      remaining_ = remaining_ * 16 + static_cast<unsigned>(v);
      return ++digits_ <= 15;
    }
    if (digits_ == 0)
      return false;
    state_ = ws ? state::size_ws : c == ';' ? state::extension : state::size_lf;
    return (ws && count_dropped(extension_bytes_, max_extension_bytes)) || c == ';' || c == '\r';
  case state::size_ws: // counted with the extensions: dropped as well
    state_ = c == ';' ? state::extension : c == '\r' ? state::size_lf : state::size_ws;
    return (ws && count_dropped(extension_bytes_, max_extension_bytes)) || c == ';' || c == '\r';
  case state::extension:
    if (c == '\r')
      state_ = state::size_lf;
    return c == '\r' || (is_line_char(c) && count_dropped(extension_bytes_, max_extension_bytes));
  default: // size_lf
    digits_ = 0;
    state_ = remaining_ == 0 ? state::trailer_start : state::data;
    return c == '\n';
  }
}

bool chunked_decoder::framing_line(char c) noexcept {
  switch (state_) {
  case state::data_cr:
    state_ = state::data_lf;
    return c == '\r';
  case state::data_lf:
    state_ = state::size;
    return c == '\n';
  case state::trailer_start:
    state_ = c == '\r' ? state::final_lf : state::trailer;
    return c == '\r' || (c != ' ' && c != '\t' && is_line_char(c) &&
                         count_dropped(trailer_fields_, max_trailer_fields) &&
                         count_dropped(trailer_bytes_, max_trailer_bytes));
  case state::trailer:
    if (c == '\r')
      state_ = state::trailer_lf;
    return c == '\r' || (is_line_char(c) && count_dropped(trailer_bytes_, max_trailer_bytes));
  case state::trailer_lf:
    state_ = state::trailer_start;
    return c == '\n';
  default: // final_lf
    state_ = state::done;
    return c == '\n';
  }
}

bool chunked_decoder::count_dropped(std::size_t& count, std::size_t limit) noexcept {
  if (++count <= limit)
    return true;
  error_ = chunked_error::too_long;
  return false;
}

std::string_view describe(chunked_error e) noexcept {
  return e == chunked_error::too_long
             ? "chunk extensions (16 KiB in all) or trailers (16 KiB, 100 fields) too long"
             : "malformed chunked body";
}

void throw_exception_from_error(chunked_error e, const boost::source_location&) {
  throw std::logic_error("unchecked chunked error " + std::to_string(static_cast<int>(e)));
}

void append_chunk_header(std::string& out, std::size_t size) {
  char buffer[20];
  char* end = buffer + sizeof buffer;
  char* p = end;
  do {
    *--p = "0123456789abcdef"[size & 0xf];
    size >>= 4;
  } while (size != 0);
  out.append(p, end);
  out.append("\r\n");
}

} // namespace tokengate::proxy::http1
