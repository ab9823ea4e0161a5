// Bulk-loads COUNT tokens into a tokengate store, for benchmarks with a large store. Prints the
// value of the last token created (every token holds the same permissions).
#include "store/rocksdb_store.hpp"
#include "tokenapi/token_json.hpp"
#include "tokenapi/token_value.hpp"

#include <charconv>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

using namespace tokengate;

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: tokengate-seed DATA_DIR COUNT [PERMISSION...]\n");
    return 2;
  }
  std::size_t count = 0;
  std::from_chars(argv[2], argv[2] + std::char_traits<char>::length(argv[2]), count);
  tokenapi::permission_set permissions;
  for (int i = 3; i < argc; ++i) {
    auto p = tokenapi::parse_permission(argv[i]);
    if (!p) {
      std::fprintf(stderr, "tokengate-seed: unknown permission %s\n", argv[i]);
      return 2;
    }
    permissions.insert(*p);
  }
  try {
    auto opened = store::rocksdb_store::open(argv[1]);
    if (!opened) {
      std::fprintf(stderr, "tokengate-seed: %s\n", opened.error().message().c_str());
      return 1;
    }
    auto& db = *opened;
    const auto now = std::chrono::floor<std::chrono::seconds>(std::chrono::system_clock::now());
    std::vector<store::token_record> batch;
    std::string last_value;
    for (std::size_t i = 0; i < count; ++i) {
      tokenapi::token t;
      t.id = *tokenapi::generate_id();
      t.name = "seed-" + std::to_string(i);
      t.permissions = permissions;
      t.created_at = t.updated_at = now;
      t.created_by = t.updated_by = tokenapi::actor::system();
      last_value = *tokenapi::generate_value();
      t.value_digest = tokenapi::digest_of(last_value);
      batch.push_back({t.id, t.value_digest, tokenapi::encode_payload(t), std::nullopt});
      if (batch.size() == 10'000 || i + 1 == count) {
        if (!db->put_many(batch)) {
          std::fprintf(stderr, "tokengate-seed: store write failed\n");
          return 1;
        }
        batch.clear();
      }
    }
    std::printf("%s\n", last_value.c_str());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "tokengate-seed: %s\n", e.what());
    return 1;
  }
}
