#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstring>
#include <memory>
#include <span>
#include <string_view>
#include <utility>

namespace tokengate::proxy {

/// A growable byte queue for socket reads: bytes are appended at the end (prepare + commit) and
/// taken from the front (consume). Single-threaded.
///
/// Storage starts as one block of `block_size`. A buffer emptied with shrink() gives its block
/// to its thread's few spares, and the next empty buffer on that thread that needs storage takes
/// one: a connection between requests holds no buffer, and its next request costs no malloc and
/// free, and reuses memory still in the cache.
class byte_buffer {
public:
  static constexpr std::size_t block_size = 16 * 1024;

  byte_buffer() = default;
  byte_buffer(byte_buffer&& other) noexcept { *this = std::move(other); }
  /// The source is left empty, with no storage.
  byte_buffer& operator=(byte_buffer&& other) noexcept {
    if (this == &other)
      return *this;
    storage_ = std::move(other.storage_);
    capacity_ = std::exchange(other.capacity_, 0);
    begin_ = std::exchange(other.begin_, 0);
    end_ = std::exchange(other.end_, 0);
    return *this;
  }
  byte_buffer(const byte_buffer&) = delete;
  byte_buffer& operator=(const byte_buffer&) = delete;
  ~byte_buffer() = default;

  [[nodiscard]] std::string_view data() const noexcept {
    return {storage_.get() + begin_, end_ - begin_};
  }
  [[nodiscard]] std::size_t size() const noexcept { return end_ - begin_; }
  [[nodiscard]] bool empty() const noexcept { return begin_ == end_; }
  [[nodiscard]] std::size_t capacity() const noexcept { return capacity_; }

  /// At least `want` writable bytes after the data, moving or growing the storage if needed.
  [[nodiscard]] std::span<char> prepare(std::size_t want) {
    if (capacity_ == 0 && want <= block_size) {
      storage_ = take_block();
      capacity_ = block_size;
    } else if (capacity_ - end_ < want) {
      if (capacity_ - size() >= want) {
        compact();
      } else {
        const auto grown = std::max(capacity_ * 2, size() + want);
        auto bigger = std::make_unique_for_overwrite<char[]>(grown);
        if (size() != 0)
          std::memcpy(bigger.get(), storage_.get() + begin_, size());
        end_ = size();
        begin_ = 0;
        storage_ = std::move(bigger);
        capacity_ = grown;
      }
    }
    return {storage_.get() + end_, capacity_ - end_};
  }
  void commit(std::size_t n) noexcept { end_ += n; }
  void consume(std::size_t n) noexcept {
    begin_ += std::min(n, size());
    if (begin_ == end_)
      begin_ = end_ = 0;
  }
  /// Moves the data to the front of the storage.
  void compact() noexcept {
    if (begin_ == 0)
      return;
    if (size() != 0)
      std::memmove(storage_.get(), storage_.get() + begin_, size());
    end_ = size();
    begin_ = 0;
  }
  /// Frees storage above `keep` bytes when empty (an idle connection stays small).
  void shrink(std::size_t keep) noexcept {
    if (empty() && capacity_ > keep) {
      const bool block = capacity_ == block_size;
      capacity_ = begin_ = end_ = 0;
      if (block)
        give_block(std::move(storage_));
      storage_.reset();
    }
  }

private:
  /// Per thread: 512 KiB at most, enough for the requests a loop has in flight at once to take
  /// and give back blocks without malloc and free.
  static constexpr std::size_t max_spares = 32;

  struct spare_blocks {
    std::array<std::unique_ptr<char[]>, max_spares> blocks;
    std::size_t count = 0;
  };
  static spare_blocks& spares() noexcept {
    thread_local spare_blocks s;
    return s;
  }
  static std::unique_ptr<char[]> take_block() {
    auto& s = spares();
    if (s.count == 0)
      return std::make_unique_for_overwrite<char[]>(block_size);
    return std::move(s.blocks[--s.count]);
  }
  static void give_block(std::unique_ptr<char[]> block) noexcept {
    auto& s = spares();
    if (block && s.count < max_spares)
      s.blocks[s.count++] = std::move(block);
  }

  std::unique_ptr<char[]> storage_;
  std::size_t capacity_ = 0;
  std::size_t begin_ = 0;
  std::size_t end_ = 0;
};

} // namespace tokengate::proxy
