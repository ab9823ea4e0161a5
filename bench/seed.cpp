// Bulk-loads COUNT tokens into a tokengate store, for benchmarks with a large store. Prints the
// value of the last token created (every token holds the same permissions). With
// --rate-limit REQUESTS/SECONDS, one more token with that rate limit (and the same permissions)
// is created, and its value printed on a second line.
#include "store/rocksdb_store.hpp"
#include "tokenapi/token_json.hpp"
#include "tokenapi/token_value.hpp"

#include <charconv>
#include <chrono>
#include <cstdio>
#include <optional>
#include <string>
#include <vector>

using namespace tokengate;

namespace {

// "REQUESTS/SECONDS", both positive.
std::optional<tokenapi::rate_limit> parse_rate_limit(std::string_view spec) {
  const auto slash = spec.find('/');
  tokenapi::rate_limit l;
  if (slash == std::string_view::npos ||
      std::from_chars(spec.data(), spec.data() + slash, l.requests).ec != std::errc() ||
      std::from_chars(spec.data() + slash + 1, spec.data() + spec.size(), l.per_seconds).ec !=
          std::errc() ||
      l.requests == 0 || l.per_seconds == 0)
    return std::nullopt;
  return l;
}

// Token number `i`, made by the system now; its value goes to `value`.
tokenapi::token seed_token(std::size_t i, tokenapi::permission_set permissions,
                           tokenapi::timestamp now, std::string& value) {
  tokenapi::token t;
  t.id = *tokenapi::generate_id();
  t.name = "seed-" + std::to_string(i);
  t.permissions = permissions;
  t.created_at = t.updated_at = now;
  t.created_by = t.updated_by = tokenapi::actor::system();
  value = *tokenapi::generate_value();
  t.value_digest = tokenapi::digest_of(value);
  return t;
}

// Writes `count` tokens (and one more with `limit`, when given) in batches; prints the value of
// the last plain one (and of the limited one). The exit status.
int seed(store::rocksdb_store& db, std::size_t count, tokenapi::permission_set permissions,
         std::optional<tokenapi::rate_limit> limit) {
  const auto now = std::chrono::floor<std::chrono::seconds>(std::chrono::system_clock::now());
  std::vector<store::token_record> batch;
  std::string last_value, limited_value;
  const std::size_t total = count + (limit ? 1 : 0);
  for (std::size_t i = 0; i < total; ++i) {
    std::string value;
    auto t = seed_token(i, permissions, now, value);
    if (i == count) { // the extra token of --rate-limit
      t.rate_limit = limit;
      limited_value = std::move(value);
    } else {
      last_value = std::move(value);
    }
    batch.push_back({t.id, t.value_digest, tokenapi::encode_payload(t), std::nullopt});
    if (batch.size() == 10'000 || i + 1 == total) {
      if (!db.put_many(batch)) {
        std::fprintf(stderr, "tokengate-seed: store write failed\n");
        return 1;
      }
      batch.clear();
    }
  }
  std::printf("%s\n", last_value.c_str());
  if (limit)
    std::printf("%s\n", limited_value.c_str());
  return 0;
}

} // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: tokengate-seed DATA_DIR COUNT [--rate-limit REQUESTS/SECONDS] "
                         "[PERMISSION...]\n");
    return 2;
  }
  std::size_t count = 0;
  std::from_chars(argv[2], argv[2] + std::char_traits<char>::length(argv[2]), count);
  std::optional<tokenapi::rate_limit> limit;
  int first_permission = 3;
  if (argc > 4 && std::string_view(argv[3]) == "--rate-limit") {
    limit = parse_rate_limit(argv[4]);
    if (!limit) {
      std::fprintf(stderr, "tokengate-seed: --rate-limit takes REQUESTS/SECONDS\n");
      return 2;
    }
    first_permission = 5;
  }
  tokenapi::permission_set permissions;
  for (int i = first_permission; i < argc; ++i) {
    auto p = tokenapi::parse_permission(argv[i]);
    if (!p) {
      std::fprintf(stderr, "tokengate-seed: unknown permission %s\n", argv[i]);
      return 2;
    }
    permissions.insert(*p);
  }
  auto opened = store::rocksdb_store::open(argv[1]);
  if (!opened) {
    std::fprintf(stderr, "tokengate-seed: %s\n", opened.error().message().c_str());
    return 1;
  }
  return seed(**opened, count, permissions, limit);
}
