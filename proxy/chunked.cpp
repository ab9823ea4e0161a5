#include "proxy/chunked.hpp"

#include "proxy/http1.hpp"

#include <algorithm>

namespace tokengate::proxy::http1 {
namespace {

// Characters allowed inside a chunk extension or a trailer line: no controls but HTAB.
bool is_line_char(char c) noexcept {
  const auto u = static_cast<unsigned char>(c);
  return u == '\t' || (u >= 0x20 && u != 0x7f);
}

} // namespace

chunked_decoder::result chunked_decoder::next(std::string_view in) noexcept {
  result r;
  std::size_t i = 0;
  const auto fail = [&] {
    state_ = state::failed;
    r.error = true;
    r.consumed = i;
    return r;
  };
  while (i < in.size()) {
    const char c = in[i];
    switch (state_) {
    case state::size: {
      const int v = hex_value(c);
      if (v >= 0) {
        if (++digits_ > 15)
          return fail();
        remaining_ = remaining_ * 16 + static_cast<unsigned>(v);
      } else if (digits_ == 0) {
        return fail();
      } else if (c == ' ' || c == '\t') {
        state_ = state::size_ws;
      } else if (c == ';') {
        state_ = state::extension;
      } else if (c == '\r') {
        state_ = state::size_lf;
      } else {
        return fail();
      }
      ++i;
      break;
    }
    case state::size_ws:
      if (c == ';')
        state_ = state::extension;
      else if (c == '\r')
        state_ = state::size_lf;
      else if (c != ' ' && c != '\t')
        return fail();
      ++i;
      break;
    case state::extension:
      if (c == '\r')
        state_ = state::size_lf;
      else if (!is_line_char(c))
        return fail();
      ++i;
      break;
    case state::size_lf:
      if (c != '\n')
        return fail();
      ++i;
      digits_ = 0;
      state_ = remaining_ == 0 ? state::trailer_start : state::data;
      break;
    case state::data: {
      const auto n = static_cast<std::size_t>(
          std::min<std::uint64_t>(remaining_, static_cast<std::uint64_t>(in.size() - i)));
      r.data = in.substr(i, n);
      remaining_ -= n;
      i += n;
      if (remaining_ == 0)
        state_ = state::data_cr;
      r.consumed = i;
      return r;
    }
    case state::data_cr:
      if (c != '\r')
        return fail();
      state_ = state::data_lf;
      ++i;
      break;
    case state::data_lf:
      if (c != '\n')
        return fail();
      state_ = state::size;
      ++i;
      break;
    case state::trailer_start:
      if (c == '\r')
        state_ = state::final_lf;
      else if (c == '\n' || c == ' ' || c == '\t' || !is_line_char(c))
        return fail();
      else
        state_ = state::trailer;
      ++i;
      break;
    case state::trailer:
      if (c == '\r')
        state_ = state::trailer_lf;
      else if (!is_line_char(c))
        return fail();
      ++i;
      break;
    case state::trailer_lf:
      if (c != '\n')
        return fail();
      state_ = state::trailer_start;
      ++i;
      break;
    case state::final_lf:
      if (c != '\n')
        return fail();
      state_ = state::done;
      ++i;
      r.done = true;
      r.consumed = i;
      return r;
    case state::done:
      r.done = true;
      r.consumed = i;
      return r;
    case state::failed:
      return fail();
    }
  }
  r.consumed = i;
  r.done = state_ == state::done;
  return r;
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
