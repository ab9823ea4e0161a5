#pragma once

#include "store/fleet_store.hpp"
#include "store/memory_store.hpp"
#include "store/pg_store.hpp"
#include "store/rocksdb_store.hpp"
#include "tests/support/catch_result.hpp"
#include "tests/support/pg_cluster.hpp"
#include "tests/support/temp_dir.hpp"

#include <memory>

namespace tokengate::test {

struct memory_fixture {
  store::memory_store store;
};

struct rocksdb_fixture {
  temp_dir dir;
  std::unique_ptr<store::rocksdb_store> owned = store::rocksdb_store::open(dir / "db").value();
  store::token_store& store = *owned;
};

/// The PostgreSQL store on a fresh database of the process' throwaway cluster.
struct pg_fixture {
  std::string database = pg_cluster::shared().create_database();
  store::pg_store owned{{pg_cluster::shared().url(database), {}, std::chrono::seconds(5)}};
  store::token_store& store = owned;
  pg_fixture() {
    auto migrated = owned.migrate();
    INFO(owned.last_error());
    REQUIRE(migrated);
  }
};

/// Fleet mode's store: PostgreSQL first, then a RocksDB replica.
struct fleet_fixture {
  pg_fixture pg;
  temp_dir dir;
  std::unique_ptr<store::rocksdb_store> replica =
      store::rocksdb_store::open(dir / "replica").value();
  store::fleet_store owned{pg.owned, *replica};
  store::token_store& store = owned;
};

inline store::digest digest_of(std::uint8_t seed) {
  store::digest d{};
  for (std::size_t i = 0; i < d.size(); ++i)
    d[i] = static_cast<std::uint8_t>(seed + i);
  return d;
}

inline store::token_record record(std::string id, std::uint8_t seed, std::string payload = "{}") {
  return store::token_record{std::move(id), digest_of(seed), std::move(payload), std::nullopt};
}

} // namespace tokengate::test
