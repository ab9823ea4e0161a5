#pragma once

#include "store/token_store.hpp"

#include <map>
#include <mutex>
#include <set>

namespace tokengate::store {

/// A token store in memory, for fast unit tests. Same contract as the RocksDB store, minus
/// durability across processes.
class memory_store final : public token_store {
public:
  result<std::optional<token_record>> get(std::string_view id) const override;
  result<std::optional<token_record>> find(const digest& d) const override;
  result<void> put(const token_record& record, std::string_view marker = {}) override;
  result<void> put_many(std::span<const token_record> records) override;
  result<bool> erase(std::string_view id) override;
  result<void> replace(const token_record& record, const token_record& expected) override;
  result<void> erase_if(const token_record& expected) override;
  result<std::vector<token_record>> scan(std::string_view after_id,
                                         std::size_t limit) const override;
  result<void> write_last_used(std::span<const usage> notes) override;
  result<bool> has_marker(std::string_view marker) const override;
  result<void> flush() override;

private:
  void put_locked(const token_record& record);
  [[nodiscard]] bool holds_locked(const token_record& expected) const;

  mutable std::mutex mutex_;
  std::map<std::string, token_record, std::less<>> records_;
  std::map<digest, std::string> by_digest_;
  std::set<std::string, std::less<>> markers_;
};

} // namespace tokengate::store
