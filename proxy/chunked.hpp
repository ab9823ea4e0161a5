#pragma once

#include <boost/system/result.hpp>

#include <cstdint>
#include <string>
#include <string_view>

namespace tokengate::proxy::http1 {

/// A strict, incremental decoder of chunked transfer coding (RFC 9112 section 7.1).
///
/// Fed any slices of the byte stream, it hands back the data of the chunks; framing must use
/// CRLF (a bare LF anywhere in it is an error, the moment it arrives), sizes are hex of at most
/// 15 digits, extensions and trailer fields are checked and dropped, and bounded: they carry no
/// data, so a sender cannot make the reader take unbounded bytes for nothing.
enum class chunked_error : std::uint8_t {
  bad_size,    ///< a chunk size that is not 1 to 15 hex digits
  bad_framing, ///< a missing CRLF, a bare LF, a control character in an extension or trailer
  too_long,    ///< extensions over max_extension_bytes, or trailers over their limits
};

/// The bytes of chunk extensions (and of whitespace after a chunk size) a message may carry in
/// all (they are dropped).
inline constexpr std::size_t max_extension_bytes = 16 * 1024;
/// The trailer section's limits, as a request head's defaults (they are dropped too).
inline constexpr std::size_t max_trailer_bytes = 16 * 1024;
inline constexpr std::size_t max_trailer_fields = 100;

/// The `message` a refused chunked body is answered with.
[[nodiscard]] std::string_view describe(chunked_error e) noexcept;

/// What one call of `chunked_decoder::next` found.
struct chunk_step {
  std::size_t consumed = 0; ///< bytes of the input used (framing and data)
  std::string_view data;    ///< chunk data found, a slice of the input; may be empty
  bool done = false;        ///< the last chunk and the trailer section have been read
};

/// For boost::system::result's value(): tokengate reads results only after checking them.
[[noreturn]] void throw_exception_from_error(chunked_error e, const boost::source_location& where);

class chunked_decoder {
public:
  /// Decodes from the start of `in` up to the end of the first run of data (or of `in`).
  /// Call again with the rest until `in` is used up or `done`. An error is final: refuse the
  /// message and close.
  [[nodiscard]] boost::system::result<chunk_step, chunked_error> next(std::string_view in) noexcept;

  [[nodiscard]] bool done() const noexcept { return state_ == state::done; }
  /// Why the decoder failed (after `next` gave an error).
  [[nodiscard]] chunked_error error() const noexcept { return error_; }
  void reset() noexcept { *this = chunked_decoder{}; }

private:
  enum class state : std::uint8_t {
    size,      // hex digits of a chunk size
    size_ws,   // whitespace after the size, before ';' or CR
    extension, // after ';', until CR
    size_lf,   // CR seen after the size line
    data,      // `remaining_` bytes of data
    data_cr,   // CRLF after data
    data_lf,
    trailer_start, // start of a trailer line or of the final CRLF
    trailer,       // inside a trailer field line
    trailer_lf,    // CR seen at end of a trailer line
    final_lf,      // CR of the final empty line seen
    done,
    failed,
  };
  [[nodiscard]] bool is_size_line() const noexcept;
  /// One byte of a size line (size, whitespace, extension, CRLF); false when malformed.
  [[nodiscard]] bool size_line(char c) noexcept;
  /// One byte of the CRLF after data, of a trailer line, or of the final CRLF.
  [[nodiscard]] bool framing_line(char c) noexcept;

  /// Counts one more of what is dropped (extension or trailer bytes, trailer fields) in
  /// `count`; false, with error_ set, once it is over `limit`.
  [[nodiscard]] bool count_dropped(std::size_t& count, std::size_t limit) noexcept;

  state state_ = state::size;
  chunked_error error_ = chunked_error::bad_framing;
  std::uint64_t remaining_ = 0;
  unsigned digits_ = 0;
  std::size_t extension_bytes_ = 0;
  std::size_t trailer_bytes_ = 0;
  std::size_t trailer_fields_ = 0;
};

/// Appends a chunk's framing for `size` data bytes ("<hex>\r\n") to `out`.
void append_chunk_header(std::string& out, std::size_t size);

/// The chunked coding's last chunk with no trailers.
inline constexpr std::string_view last_chunk = "0\r\n\r\n";

} // namespace tokengate::proxy::http1
