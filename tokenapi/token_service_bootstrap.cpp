// Start-up: the bootstrap token (README "Bootstrap").
#include "tokenapi/bootstrap_file.hpp"
#include "tokenapi/token_service.hpp"
#include "tokenapi/token_value.hpp"

#include <stdexcept>

namespace tokengate::tokenapi {
namespace {

std::string bootstrap_marker(const store::digest& d) {
  constexpr std::string_view hex = "0123456789abcdef";
  std::string m = "bootstrap:";
  for (auto b : d) {
    m.push_back(hex[b >> 4]);
    m.push_back(hex[b & 0xf]);
  }
  return m;
}

token bootstrap_token(timestamp now) {
  token t;
  t.name = "bootstrap";
  t.permissions = permission_set::all();
  t.created_at = t.updated_at = now;
  t.created_by = t.updated_by = actor::system();
  return t;
}

std::runtime_error store_failure() {
  return std::runtime_error("token store unavailable at start-up");
}

} // namespace

token_service::bootstrap_outcome token_service::bootstrap(const std::filesystem::path& file,
                                                          std::string* made_id) {
  auto content = read_bootstrap_file(file);
  if (!content)
    throw std::runtime_error(content.error().message());
  if (*content) {
    if (!well_formed(**content))
      throw std::runtime_error("bootstrap token file " + file.string() +
                               " does not hold a tokengate key (tg_..., see 'tokengate keygen')");
    return adopt_bootstrap(std::move(**content), made_id);
  }
  auto any = store_.scan("", 1);
  if (!any)
    throw store_failure();
  if (!any->empty())
    return bootstrap_outcome::not_needed;
  auto value = generate_value();
  if (!value)
    throw std::runtime_error("random number generator unavailable");
  // The file first: a crash before the token is stored leaves a file the next start adopts.
  if (auto written = write_bootstrap_file(file, *value); !written)
    throw std::runtime_error(written.error().message());
  // The marker first: computed within the same call, it could see the value already moved from.
  const auto marker = bootstrap_marker(digest_of(*value));
  std::lock_guard lock(write_mutex_);
  auto made = insert(bootstrap_token(clock_.now()), marker, std::move(*value));
  if (!made)
    throw store_failure();
  if (made_id)
    *made_id = made->t.id;
  return bootstrap_outcome::generated;
}

// The value of the file becomes the bootstrap token, unless it is one already or was once.
token_service::bootstrap_outcome token_service::adopt_bootstrap(std::string value,
                                                                std::string* made_id) {
  const auto digest = digest_of(value);
  auto existing = store_.find(digest);
  if (!existing)
    throw store_failure();
  if (*existing)
    return bootstrap_outcome::present;
  const auto marker = bootstrap_marker(digest);
  auto seen = store_.has_marker(marker);
  if (!seen)
    throw store_failure();
  if (*seen)
    return bootstrap_outcome::revoked;
  std::lock_guard lock(write_mutex_);
  auto made = insert(bootstrap_token(clock_.now()), marker, std::move(value));
  if (!made)
    throw store_failure();
  if (made_id)
    *made_id = made->t.id;
  return bootstrap_outcome::created_from_file;
}

} // namespace tokengate::tokenapi
