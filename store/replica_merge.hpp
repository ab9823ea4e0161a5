#pragma once

#include "store/change_feed.hpp"
#include "store/replica_store.hpp"

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace tokengate::store {

/// One page of a database snapshot, by id in byte order.
using snapshot_page = std::map<std::string, std::optional<token_record>>;

/// The replica's records with ids after `after` up to `upto` (everything after `after` when
/// `to_end`), read `page_size` at a time.
[[nodiscard]] result<std::map<std::string, token_record>>
held_in(replica_store& replica, std::string after, const std::string& upto, bool to_end,
        std::size_t page_size);

/// Adds to `batch` the writes that make the replica's range, `held`, equal to `page`: the
/// records that differ or are missing, and the erasure of ids the page does not hold; and to
/// `changes` the same as changes for the domain, and the records the replica holds as they are
/// whose ids `republish` picks (the domain dropped them). Moves the records out of `page`.
void merge_page(snapshot_page& page, const std::map<std::string, token_record>& held,
                replica_batch& batch, std::vector<replicated_change>& changes,
                const std::function<bool(std::string_view id)>& republish = {});

} // namespace tokengate::store
