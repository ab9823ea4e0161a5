// A snapshot page merged into a replica: what it holds of the range, and the writes that make
// it equal to the page.
#include "store/replica_merge.hpp"

namespace tokengate::store {

result<std::map<std::string, token_record>> held_in(replica_store& replica, std::string after,
                                                    const std::string& upto, bool to_end,
                                                    std::size_t page_size) {
  std::map<std::string, token_record> held;
  for (;;) {
    auto chunk = replica.scan(after, page_size);
    if (!chunk)
      return chunk.error();
    if (chunk->empty())
      return held;
    // Read before the records are moved out of the chunk.
    const bool done = chunk->size() < page_size || (!to_end && chunk->back().id > upto);
    after = chunk->back().id;
    for (auto& r : *chunk)
      if (to_end || r.id <= upto)
        held.emplace(r.id, std::move(r));
    if (done)
      return held;
  }
}

void merge_page(snapshot_page& page, const std::map<std::string, token_record>& held,
                replica_batch& batch, std::vector<replicated_change>& changes,
                const std::function<bool(std::string_view id)>& republish) {
  for (const auto& [id, record] : held)
    if (!page.contains(id)) {
      batch.erases.push_back(id);
      changes.push_back({id, record.value_digest, std::nullopt, true});
    }
  for (auto& [id, record] : page) {
    auto h = held.find(id);
    std::optional<digest> previous;
    if (h != held.end()) {
      previous = h->second.value_digest;
      if (h->second.value_digest == record->value_digest && h->second.payload == record->payload) {
        if (republish && republish(id))
          changes.push_back({id, previous, std::move(record), true});
        continue;
      }
    }
    batch.puts.push_back(*record);
    batch.replaced.push_back(previous);
    changes.push_back({id, previous, std::move(record), true});
  }
}

} // namespace tokengate::store
