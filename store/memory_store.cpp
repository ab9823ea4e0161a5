#include "store/memory_store.hpp"

namespace tokengate::store {

result<std::optional<token_record>> memory_store::get(std::string_view id) const {
  std::lock_guard lock(mutex_);
  auto it = records_.find(id);
  if (it == records_.end())
    return std::optional<token_record>{};
  return std::optional<token_record>{it->second};
}

result<std::optional<token_record>> memory_store::find(const digest& d) const {
  std::lock_guard lock(mutex_);
  auto index = by_digest_.find(d);
  if (index == by_digest_.end())
    return std::optional<token_record>{};
  return std::optional<token_record>{records_.at(index->second)};
}

result<void> memory_store::put(const token_record& record, std::string_view marker) {
  std::lock_guard lock(mutex_);
  put_locked(record);
  if (!marker.empty())
    markers_.emplace(marker);
  return {};
}

result<void> memory_store::put_many(std::span<const token_record> records) {
  std::lock_guard lock(mutex_);
  for (const auto& r : records)
    put_locked(r);
  return {};
}

void memory_store::put_locked(const token_record& record) {
  auto [it, inserted] = records_.try_emplace(record.id);
  std::optional<std::int64_t> last_used;
  if (!inserted) {
    by_digest_.erase(it->second.value_digest);
    last_used = it->second.last_used;
  }
  it->second = record;
  it->second.last_used = last_used;
  by_digest_[record.value_digest] = record.id;
}

result<bool> memory_store::erase(std::string_view id) {
  std::lock_guard lock(mutex_);
  auto it = records_.find(id);
  if (it == records_.end())
    return false;
  by_digest_.erase(it->second.value_digest);
  records_.erase(it);
  return true;
}

bool memory_store::holds_locked(const token_record& expected) const {
  auto it = records_.find(expected.id);
  return it != records_.end() && it->second.value_digest == expected.value_digest &&
         it->second.payload == expected.payload;
}

result<void> memory_store::replace(const token_record& record, const token_record& expected) {
  std::lock_guard lock(mutex_);
  if (record.id != expected.id || !holds_locked(expected))
    return errc::stale;
  put_locked(record);
  return {};
}

result<void> memory_store::erase_if(const token_record& expected) {
  std::lock_guard lock(mutex_);
  if (!holds_locked(expected))
    return errc::stale;
  auto it = records_.find(expected.id);
  by_digest_.erase(it->second.value_digest);
  records_.erase(it);
  return {};
}

result<std::vector<token_record>> memory_store::scan(std::string_view after_id,
                                                     std::size_t limit) const {
  std::lock_guard lock(mutex_);
  std::vector<token_record> page;
  auto it = after_id.empty() ? records_.begin() : records_.upper_bound(after_id);
  for (; it != records_.end() && page.size() < limit; ++it)
    page.push_back(it->second);
  return page;
}

result<void> memory_store::write_last_used(std::span<const usage> notes) {
  std::lock_guard lock(mutex_);
  for (const auto& note : notes) {
    auto it = records_.find(note.id);
    if (it != records_.end())
      it->second.last_used = note.at;
  }
  return {};
}

result<bool> memory_store::has_marker(std::string_view marker) const {
  std::lock_guard lock(mutex_);
  return markers_.contains(marker);
}

result<void> memory_store::flush() { return {}; }

} // namespace tokengate::store
