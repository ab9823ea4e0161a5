#pragma once

// The replica as a fleet's follower reaches it, over a real RocksDB store, with reads and writes
// that can be made to fail (a full or broken disk).
#include "store/replica_store.hpp"
#include "store/rocksdb_store.hpp"

#include <atomic>
#include <string>

namespace tokengate::test {

/// The replica as the follower reaches it: its page writes fail while `failing_writes` is set,
/// its reads of records while `failing_reads` is set; `resumed` counts the follower's calls to
/// resume it.
class failing_follower_replica final : public store::replica_store {
public:
  explicit failing_follower_replica(store::rocksdb_store& real) : real_(real) {}

  std::atomic<bool> failing_writes{false};
  std::atomic<bool> failing_reads{false};
  std::atomic<int> resumed{0};

  store::result<std::optional<store::token_record>> get(std::string_view id) const override {
    if (failing_reads)
      return store::errc::io_error;
    return real_.get(id);
  }
  store::result<std::vector<store::token_record>> scan(std::string_view after,
                                                       std::size_t limit) const override {
    if (failing_reads)
      return store::errc::io_error;
    return real_.scan(after, limit);
  }
  store::result<std::optional<std::string>> read_meta(std::string_view name) const override {
    return real_.read_meta(name);
  }
  store::result<void> apply(const store::replica_batch& batch) override {
    if (failing_writes)
      return store::errc::io_error;
    return real_.apply(batch);
  }
  store::result<void> note_meta(std::string_view name, std::string_view value) override {
    return real_.note_meta(name, value);
  }
  store::result<void> resume() override {
    ++resumed;
    return real_.resume();
  }
  std::string last_error() const override {
    return failing_writes || failing_reads ? "IO error: injected" : real_.last_error();
  }

private:
  store::rocksdb_store& real_;
};

} // namespace tokengate::test
