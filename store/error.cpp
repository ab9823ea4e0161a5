#include "store/error.hpp"

#include <stdexcept>

namespace tokengate::store {
namespace {

class category final : public boost::system::error_category {
public:
  const char* name() const noexcept override { return "tokengate.store"; }
  std::string message(int ev) const override {
    switch (static_cast<errc>(ev)) {
    case errc::io_error:
      return "token store I/O error";
    case errc::corruption:
      return "token store entry is corrupt";
    case errc::busy:
      return "token store is unavailable";
    case errc::unavailable:
      return "token database is unreachable";
    case errc::conflict:
      return "a different token already holds this id";
    case errc::stale:
      return "the token changed since it was read";
    case errc::replica_behind:
      return "the local replica did not take a write the database committed";
    case errc::commit_unknown:
      return "the token database was lost during a commit: the write may have been applied";
    }
    return "unknown token store error";
  }
};

} // namespace

void throw_exception_from_error(const open_error& e, const boost::source_location&) {
  throw std::runtime_error(e.text);
}

const boost::system::error_category& store_category() noexcept {
  static const category instance;
  return instance;
}

} // namespace tokengate::store
