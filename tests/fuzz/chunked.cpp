// The chunked decoder. Properties: the data and the outcome do not depend on how the stream is
// split; data re-encoded by append_chunk_header decodes back to the same bytes.
#include "proxy/chunked.hpp"
#include "tests/fuzz/fuzz_check.hpp"

#include <string>

using tokengate::fuzz::check;
using namespace tokengate::proxy::http1;

namespace {

struct outcome {
  std::string data;
  std::size_t consumed = 0;
  bool done = false;
  bool error = false;
};

// Feeds `in` in pieces of at most `step` bytes, as reads from a socket would.
outcome decode(std::string_view in, std::size_t step) {
  chunked_decoder d;
  outcome o;
  std::size_t fed = 0; // bytes handed to the decoder so far (the window's end)
  std::string_view window;
  while (!o.done && !o.error) {
    if (window.empty()) {
      if (fed == in.size())
        break;
      const auto n = std::min(step, in.size() - fed);
      window = in.substr(fed, n);
      fed += n;
    }
    const auto step = d.next(window);
    if (!step) {
      o.error = true;
      break;
    }
    const auto& r = *step;
    check(r.consumed <= window.size(), "consumed within the input");
    check(r.data.empty() || (r.data.data() >= window.data() &&
                             r.data.data() + r.data.size() <= window.data() + window.size()),
          "data is a slice of the input");
    o.data.append(r.data);
    window.remove_prefix(r.consumed);
    o.consumed += r.consumed;
    o.done = r.done;
    if (r.consumed == 0 && !r.done && !window.empty())
      check(false, "the decoder makes progress");
  }
  return o;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const unsigned char* data, std::size_t size) {
  if (size == 0)
    return 0;
  const std::size_t step = 1 + data[0] % 7;
  const auto input = tokengate::fuzz::as_text(data + 1, size - 1);

  const auto whole = decode(input, input.size() + 1);
  const auto split = decode(input, step);
  check(whole.error == split.error && whole.done == split.done, "outcome independent of splits");
  if (!whole.error) {
    check(whole.data == split.data, "data independent of splits");
    check(whole.consumed == split.consumed, "consumed independent of splits");
  }

  // Any bytes, framed by us, decode back to themselves.
  std::string framed;
  append_chunk_header(framed, input.size());
  framed.append(input).append("\r\n").append(last_chunk);
  const auto round = decode(input.empty() ? std::string_view(last_chunk) : framed, step);
  check(round.done && !round.error && round.data == input, "our framing decodes back");
  return 0;
}
