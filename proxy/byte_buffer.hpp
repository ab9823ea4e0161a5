#pragma once

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <memory>
#include <span>
#include <string_view>
#include <vector>

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
  void shrink(std::size_t keep) {
    if (empty() && capacity_ > keep) {
      if (capacity_ == block_size)
        give_block(std::move(storage_));
      storage_.reset();
      capacity_ = begin_ = end_ = 0;
    }
  }

private:
  static constexpr std::size_t max_spares = 8; ///< per thread: 128 KiB at most

  static std::vector<std::unique_ptr<char[]>>& spares() {
    thread_local std::vector<std::unique_ptr<char[]>> blocks;
    return blocks;
  }
  static std::unique_ptr<char[]> take_block() {
    auto& blocks = spares();
    if (blocks.empty())
      return std::make_unique_for_overwrite<char[]>(block_size);
    auto block = std::move(blocks.back());
    blocks.pop_back();
    return block;
  }
  static void give_block(std::unique_ptr<char[]> block) {
    auto& blocks = spares();
    if (blocks.size() < max_spares)
      blocks.push_back(std::move(block));
  }

  std::unique_ptr<char[]> storage_;
  std::size_t capacity_ = 0;
  std::size_t begin_ = 0;
  std::size_t end_ = 0;
};

} // namespace tokengate::proxy
