#pragma once

#include "store/token_store.hpp"

#include <cstdint>
#include <cstring>
#include <optional>
#include <vector>

namespace tokengate::tokenapi {

/// An open-addressing (linear probing) index from a 32-byte digest to a 32-bit value, 8 bytes a
/// slot: 32 bits of the digest (SHA-256 digests are uniform: their own bytes are the hash) and
/// the value. The digests themselves live with the caller: `KeyOf` maps a stored value back to
/// its digest, read only when the 32 bits already match, never to grow or to shift. Erasing shifts
/// the probe run back (no tombstones), so lookups stay short however many changes it has seen. Not
/// thread-safe: the owner locks.
template <class KeyOf> class digest_table {
public:
  explicit digest_table(KeyOf key_of = {}) : key_of_(key_of) {}

  /// Makes room for `n` values without growing again.
  void reserve(std::size_t n) {
    if (n * 5 > slots_.size() * 4)
      rehash(n * 4 / 3 + 8);
  }

  [[nodiscard]] std::optional<std::uint32_t> find(const store::digest& d) const noexcept {
    if (slots_.empty())
      return std::nullopt;
    const auto t = tag(d);
    for (auto i = home(t);; i = next(i)) {
      const auto& s = slots_[i];
      if (s.value == empty)
        return std::nullopt;
      if (s.tag == t && key_of_(s.value) == d)
        return s.value;
    }
  }

  /// Stores `value` under `d` (whose digest `KeyOf` must give back); returns the value it
  /// replaced, if any.
  std::optional<std::uint32_t> insert_or_assign(const store::digest& d, std::uint32_t value) {
    if ((size_ + 1) * 5 > slots_.size() * 4)
      rehash(slots_.size() * 2 + 16);
    const auto t = tag(d);
    for (auto i = home(t);; i = next(i)) {
      auto& s = slots_[i];
      if (s.value == empty) {
        s = {t, value};
        ++size_;
        return std::nullopt;
      }
      if (s.tag == t && key_of_(s.value) == d) {
        const auto old = s.value;
        s.value = value;
        return old;
      }
    }
  }

  /// Removes `d`; returns the value it held, if any.
  std::optional<std::uint32_t> erase(const store::digest& d) noexcept {
    if (slots_.empty())
      return std::nullopt;
    const auto t = tag(d);
    auto i = home(t);
    for (;; i = next(i)) {
      if (slots_[i].value == empty)
        return std::nullopt;
      if (slots_[i].tag == t && key_of_(slots_[i].value) == d)
        break;
    }
    const auto removed = slots_[i].value;
    // Backward shift: pull each later member of the run into the hole if its home allows it.
    for (auto j = next(i);; j = next(j)) {
      if (slots_[j].value == empty)
        break;
      const auto h = home(slots_[j].tag);
      const bool movable = i <= j ? (h <= i || h > j) : (h <= i && h > j);
      if (movable) {
        slots_[i] = slots_[j];
        i = j;
      }
    }
    slots_[i] = {0, empty};
    --size_;
    return removed;
  }

  [[nodiscard]] std::size_t size() const noexcept { return size_; }
  [[nodiscard]] std::size_t capacity() const noexcept { return slots_.size(); }

  /// Calls `f(value)` for every stored value, in no order.
  template <class F> void for_each(F&& f) const {
    for (const auto& s : slots_)
      if (s.value != empty)
        f(s.value);
  }

  static constexpr std::uint32_t empty = 0xffffffff;

private:
  struct slot {
    std::uint32_t tag = 0;
    std::uint32_t value = empty;
  };

  static std::uint32_t tag(const store::digest& d) noexcept {
    std::uint32_t t;
    std::memcpy(&t, d.data(), sizeof t);
    return t;
  }
  // Multiply-shift onto [0, size): any table size works, not only powers of two.
  std::size_t home(std::uint32_t tag) const noexcept {
    return static_cast<std::size_t>((std::uint64_t{tag} * slots_.size()) >> 32);
  }
  std::size_t next(std::size_t i) const noexcept { return i + 1 == slots_.size() ? 0 : i + 1; }

  void rehash(std::size_t capacity) {
    std::vector<slot> old(capacity);
    old.swap(slots_);
    for (const auto& s : old) {
      if (s.value == empty)
        continue;
      auto i = home(s.tag);
      while (slots_[i].value != empty)
        i = next(i);
      slots_[i] = s;
    }
  }

  KeyOf key_of_;
  std::vector<slot> slots_;
  std::size_t size_ = 0;
};

} // namespace tokengate::tokenapi
