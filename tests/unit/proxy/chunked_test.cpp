// The chunked transfer coding: decoded strictly and incrementally, whatever the slices the
// bytes arrive in, and written with lowercase hex sizes.
#include "proxy/chunked.hpp"

#include <catch2/catch.hpp>

#include <optional>
#include <string>
#include <vector>

using namespace tokengate::proxy::http1;

namespace {

// Everything the decoder reported over a stream fed slice by slice.
struct decoded {
  std::string data;
  bool done = false;
  bool error = false;
  std::size_t error_at = 0; ///< stream offset of the slice end when the error was reported
  std::string after;        ///< bytes left over once done (the next message)
};

// Feeds one slice, calling next() until the slice is used up, done or error.
void feed(chunked_decoder& d, std::string_view slice, decoded& out, std::size_t& offset) {
  while (!slice.empty() && !out.done && !out.error) {
    const auto r = d.next(slice);
    if (!r) {
      out.error = true;
      break;
    }
    REQUIRE(r->consumed <= slice.size());
    if (!r->data.empty()) {
      // The data is a view into the slice, inside what was consumed.
      REQUIRE(r->data.data() >= slice.data());
      REQUIRE(r->data.data() + r->data.size() <= slice.data() + r->consumed);
    }
    out.data.append(r->data);
    out.done = r->done;
    REQUIRE((r->consumed > 0 || r->done));
    slice.remove_prefix(r->consumed);
    offset += r->consumed;
  }
  if (out.error)
    out.error_at = offset;
  if (out.done)
    out.after.append(slice);
}

decoded decode_in_slices(std::string_view stream, const std::vector<std::size_t>& cuts) {
  chunked_decoder d;
  decoded out;
  std::size_t offset = 0;
  std::size_t from = 0;
  for (auto cut : cuts) {
    if (out.done || out.error)
      break;
    feed(d, stream.substr(from, cut - from), out, offset);
    if (!out.done)
      from = cut;
    else
      out.after.append(stream.substr(cut));
  }
  if (!out.done && !out.error)
    feed(d, stream.substr(from), out, offset);
  CHECK(d.done() == out.done);
  return out;
}

decoded decode(std::string_view stream) { return decode_in_slices(stream, {}); }

decoded decode_bytewise(std::string_view stream) {
  std::vector<std::size_t> cuts;
  for (std::size_t i = 1; i < stream.size(); ++i)
    cuts.push_back(i);
  return decode_in_slices(stream, cuts);
}

const std::string sample_data = "hello"
                                "abcdefghijklmnopqrstuvwxyz"
                                "xyz"
                                "\r\n0\r\n";
const std::string sample_stream = "5\r\nhello\r\n"
                                  "1A;name=value;flag\r\nabcdefghijklmnopqrstuvwxyz\r\n"
                                  "3 ; spaced = \"quoted ext\"\r\nxyz\r\n"
                                  "005\r\n\r\n0\r\n\r\n"
                                  "0;last\r\n"
                                  "Trailer-One: 1\r\n"
                                  "Trailer-Two: two words\r\n"
                                  "\r\n";
const std::string next_message = "GET /next HTTP/1.1\r\n\r\n";

} // namespace

TEST_CASE("a chunked stream decodes to exactly its data", "[chunked]") {
  const auto r = decode(sample_stream + next_message);
  CHECK_FALSE(r.error);
  CHECK(r.done);
  CHECK(r.data == sample_data);
  CHECK(r.after == next_message);
}

TEST_CASE("a chunked stream decodes the same fed one byte at a time", "[chunked]") {
  const auto r = decode_bytewise(sample_stream + next_message);
  CHECK_FALSE(r.error);
  CHECK(r.done);
  CHECK(r.data == sample_data);
  CHECK(r.after == next_message);
}

TEST_CASE("a chunked stream decodes the same split at every byte boundary", "[chunked]") {
  const auto stream = sample_stream + next_message;
  for (std::size_t cut = 0; cut <= stream.size(); ++cut) {
    INFO("split at " << cut);
    const auto r = decode_in_slices(stream, {cut});
    REQUIRE_FALSE(r.error);
    REQUIRE(r.done);
    REQUIRE(r.data == sample_data);
    REQUIRE(r.after == next_message);
  }
}

TEST_CASE("the decoder stops at the end of the chunked body and stays done", "[chunked]") {
  chunked_decoder d;
  const std::string stream = "2\r\nok\r\n0\r\n\r\nEXTRA";
  std::string data;
  std::string_view rest = stream;
  for (;;) {
    const auto r = d.next(rest);
    REQUIRE(r.has_value());
    data.append(r->data);
    rest.remove_prefix(r->consumed);
    if (r->done)
      break;
  }
  CHECK(data == "ok");
  CHECK(rest == "EXTRA");
  CHECK(d.done());
  const auto again = d.next(rest);
  REQUIRE(again.has_value());
  CHECK(again->done);
  CHECK(again->consumed == 0);
  CHECK(again->data.empty());

  d.reset();
  CHECK_FALSE(d.done());
  CHECK(decode(last_chunk).done);
}

TEST_CASE("malformed chunk framing is refused where it goes wrong", "[chunked][smuggling]") {
  struct bad_case {
    const char* what;
    std::string stream;
    std::size_t bad_byte; ///< offset of the first byte that cannot be accepted
  };
  const std::vector<bad_case> cases = {
      {"bare LF after the size", "5\nhello\r\n0\r\n\r\n", 1},
      {"bare LF after an extension", "5;x=y\nhello\r\n0\r\n\r\n", 5},
      {"bare LF after the data", "5\r\nhello\n0\r\n\r\n", 8},
      {"bare LF ending a trailer line", "0\r\nX-T: 1\n\r\n", 9},
      {"bare LF as the final line", "0\r\n\n", 3},
      {"bare LF after the final CR", "0\r\n\r\r\n", 4},
      {"a non-hex size", "g\r\nhello\r\n", 0},
      {"a size with a 0x prefix", "0x5\r\nhello\r\n", 1},
      {"a negative size", "-5\r\nhello\r\n", 0},
      {"an empty size", "\r\nhello\r\n", 0},
      {"whitespace before the size", " 5\r\nhello\r\n", 0},
      {"16 hex digits", "0000000000000005\r\nhello\r\n0\r\n\r\n", 15},
      {"a size too big for 64 bits", "10000000000000000\r\n", 15},
      {"data longer than its size", "5\r\nhelloX\r\n0\r\n\r\n", 8},
      {"no CRLF after the data", "5\r\nhello0\r\n\r\n", 8},
      {"CR without LF after the data", "5\r\nhello\r0\r\n\r\n", 9},
      {"a control character in an extension",
       "5;a\x01"
       "b\r\nhello\r\n",
       3},
      {"a folded trailer line", "0\r\n X: 1\r\n\r\n", 3},
      {"a control character in a trailer", "0\r\nX: \x02\r\n\r\n", 6},
      {"text after the size", "5 x\r\nhello\r\n", 2},
  };
  for (const auto& c : cases) {
    INFO(c.what);
    const auto whole = decode(c.stream);
    CHECK(whole.error);
    CHECK_FALSE(whole.done);

    // Fed one byte at a time, the error comes with the offending byte, not later.
    const auto bytewise = decode_bytewise(c.stream);
    CHECK(bytewise.error);
    CHECK(bytewise.error_at == c.bad_byte);
    CHECK(bytewise.data == whole.data);
  }
}

TEST_CASE("chunk extensions and trailers are bounded, since they are dropped", "[chunked]") {
  // Extensions count over the whole message, however they are spread.
  const auto extensions = [](std::size_t first, std::size_t second) {
    return "1;" + std::string(first, 'e') + "\r\nx\r\n1;" + std::string(second, 'e') +
           "\r\ny\r\n0\r\n\r\n";
  };
  const auto fits = decode_bytewise(extensions(8 * 1024, 8 * 1024)); // ';' is not counted
  CHECK(fits.done);
  CHECK(fits.data == "xy");
  // The error a whole stream ends in, fed to next() until it stops.
  const auto error_of = [](chunked_decoder& d, std::string_view stream) {
    for (;;) {
      const auto r = d.next(stream);
      if (!r)
        return std::optional<chunked_error>(r.error());
      if (r->done || r->consumed == stream.size())
        return std::optional<chunked_error>();
      stream.remove_prefix(r->consumed);
    }
  };
  chunked_decoder d;
  CHECK(error_of(d, extensions(8 * 1024, 8 * 1024 + 1)) == chunked_error::too_long);
  CHECK(d.error() == chunked_error::too_long);
  CHECK(describe(d.error()) ==
        "chunk extensions (16 KiB in all) or trailers (16 KiB, 100 fields) too long");

  const auto trailers = [](std::size_t fields, std::size_t value_bytes) {
    std::string s = "0\r\n";
    for (std::size_t i = 0; i < fields; ++i)
      s += "X-T: " + std::string(value_bytes, 'v') + "\r\n";
    return s + "\r\n";
  };
  CHECK(decode(trailers(max_trailer_fields, 1)).done);
  CHECK(decode(trailers(1, max_trailer_bytes - 5)).done); // "X-T: " and the value
  for (const auto& stream :
       {trailers(max_trailer_fields + 1, 1), trailers(1, max_trailer_bytes - 4),
        // whitespace after a size counts as extension bytes
        "1" + std::string(max_extension_bytes + 1, ' ') + "\r\nx\r\n0\r\n\r\n"}) {
    chunked_decoder t;
    CHECK(error_of(t, stream) == chunked_error::too_long);
  }
  // A malformed body is still told as such.
  CHECK(describe(chunked_error::bad_framing) == "malformed chunked body");
}

TEST_CASE("after an error the decoder keeps refusing", "[chunked]") {
  chunked_decoder d;
  REQUIRE(d.next("z").error() == chunked_error::bad_size);
  const auto r = d.next("5\r\nhello\r\n0\r\n\r\n");
  CHECK_FALSE(r.has_value());
  CHECK_FALSE(d.done());
}

TEST_CASE("15 hex digits are accepted as a size", "[chunked]") {
  const auto r = decode("000000000000005\r\nhello\r\n0\r\n\r\n");
  CHECK_FALSE(r.error);
  CHECK(r.done);
  CHECK(r.data == "hello");

  chunked_decoder d;
  const auto big = d.next("fffffffffffffff\r\nab");
  REQUIRE(big.has_value());
  CHECK(big->data == "ab");
}

TEST_CASE("append_chunk_header writes lowercase hex and CRLF", "[chunked]") {
  std::string out = "prefix:";
  append_chunk_header(out, 0);
  CHECK(out == "prefix:0\r\n");
  out.clear();
  append_chunk_header(out, 255);
  CHECK(out == "ff\r\n");
  out.clear();
  append_chunk_header(out, 0xabcdef);
  CHECK(out == "abcdef\r\n");
  out.clear();
  append_chunk_header(out, 4096);
  CHECK(out == "1000\r\n");
  out.clear();
  append_chunk_header(out, static_cast<std::size_t>(0xfffffffffffffffULL));
  CHECK(out == "fffffffffffffff\r\n");
  CHECK(last_chunk == "0\r\n\r\n");
}

TEST_CASE("what append_chunk_header frames decodes back to the same data", "[chunked]") {
  std::string stream;
  std::string expected;
  for (std::size_t size : {1u, 15u, 16u, 255u, 256u, 4097u}) {
    const std::string data(size, static_cast<char>('a' + size % 26));
    append_chunk_header(stream, data.size());
    stream += data + "\r\n";
    expected += data;
  }
  stream += last_chunk;
  const auto r = decode_bytewise(stream);
  CHECK(r.done);
  CHECK_FALSE(r.error);
  CHECK(r.data == expected);
}
