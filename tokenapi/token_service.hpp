#pragma once

#include "store/change_feed.hpp"
#include "store/token_store.hpp"
#include "tokenapi/api_error.hpp"
#include "tokenapi/authorizer.hpp"
#include "tokenapi/clock.hpp"
#include "tokenapi/token.hpp"

#include <filesystem>
#include <mutex>
#include <span>
#include <string>
#include <vector>

namespace tokengate::tokenapi {

/// The operations of the token API on authenticated callers: every change is written to the
/// store (durably) and then published to the authorizer, before the call returns, so the next
/// request sees it. Store failures become 503s. Thread-safe; writes are serialized. A fleet's
/// write the local replica missed (`errc::replica_behind`) stands and is answered, but the
/// token is refused here until the follower brings it in (token_service.cpp says why).
///
/// A change to a stored token is written only over the record it was read from (the store's
/// conditional write): when another sidecar of a fleet changed or deleted the token meanwhile,
/// the change is applied again to the token as it is now (a few times), or answered 404 when
/// it is gone; never lost, never answered 200 unwritten. 503 when the token keeps changing.
///
/// In a fleet it is also the sink of the change feed: other sidecars' changes are published to
/// the authorizer as the follower applies them, never interleaved with a local write.
class token_service final : public store::change_sink {
public:
  token_service(store::token_store& store, authorizer& auth, const clock& clock);

  /// A token and, for create and rotate, its value (shown once, never kept).
  struct issued {
    token t;
    std::string value;
  };
  struct page {
    std::vector<token> tokens;
    std::string last_id; ///< the id to continue after; empty on the last page
  };
  struct load_report {
    std::size_t loaded = 0;
    std::size_t unreadable = 0; ///< records that could not be decoded (left unusable)
  };

  /// Publishes every stored token to the authorizer. Start-up only.
  [[nodiscard]] store::result<load_report> load();

  /// 403 when `spec` grants what `caller` does not hold.
  [[nodiscard]] api_result<issued> create(const auth_entry& caller, const token_spec& spec);
  [[nodiscard]] api_result<token> get(std::string_view id) const;
  // update, erase, rotate: `replaced`, when given, receives the token as the change found it
  // when it succeeds (the version written over, after any read again: for the audit trail).

  /// Replaces name, permissions and CIDR blocks (and expiry when given). 403 on escalation.
  [[nodiscard]] api_result<token> update(const auth_entry& caller, std::string_view id,
                                         const token_spec& spec, token* replaced = nullptr);
  [[nodiscard]] api_result<void> erase(std::string_view id, token* replaced = nullptr);
  /// A new value. The old one works on for `overlap` (0: fails from the moment this returns);
  /// a value an earlier rotation kept alive fails at once. 403 when the token holds
  /// permissions the caller does not (rotating would hand the caller those permissions).
  [[nodiscard]] api_result<issued> rotate(const auth_entry& caller, std::string_view id,
                                          std::chrono::seconds overlap = {},
                                          token* replaced = nullptr);
  /// Up to `limit` tokens with ids after `after_id`, in id order.
  [[nodiscard]] api_result<page> list(std::string_view after_id, std::size_t limit) const;

  enum class bootstrap_outcome {
    created_from_file, ///< the file's value became the bootstrap token
    generated,         ///< a new value was written to the file
    present,           ///< the file's value is already a token
    revoked,           ///< the file's value was a bootstrap token once and has been deleted or
                       ///< rotated since: it stays revoked
    not_needed,        ///< no file, and the store already holds tokens
  };
  /// README "Bootstrap": adopts the key in `file`, or writes a new one there when the store is
  /// empty (the file itself: tokenapi/bootstrap_file.hpp). Start-up only; throws
  /// std::runtime_error naming the problem (an unreadable file, a file that holds no tokengate
  /// key, a store failure). `made_id`, when given, receives the id of a token it made.
  bootstrap_outcome bootstrap(const std::filesystem::path& file, std::string* made_id = nullptr);

  /// Whether the store answers reads (for /readyz).
  [[nodiscard]] bool healthy() const;

  /// Writes the last-use notes gathered since the previous call, unsynced; notes it could
  /// not write are kept (in memory) for the next call. Background: always on one thread.
  [[nodiscard]] store::result<std::size_t> flush_usage();

  // change_sink
  void exclusive(const std::function<void()>& sync) override;
  void apply(const store::replicated_change& change) override;
  void forget(std::span<const std::string> ids) override;
  void forget_range(const store::id_range& range) override;
  void fail_closed(bool on) override;
  void fresh_until(std::int64_t unix_ms) override;

private:
  [[nodiscard]] load_report load_records(std::span<const store::token_record> records);
  bootstrap_outcome adopt_bootstrap(std::string value, std::string* made_id);
  [[nodiscard]] api_result<token> load_token(std::string_view id) const;
  /// A token with the record it was read from, for a change to be written over.
  struct loaded {
    store::token_record record;
    token t;
  };
  [[nodiscard]] api_result<loaded> load_for_change(std::string_view id) const;
  /// After a conditional write found the token changed: brings the store and the authorizer up
  /// to the token as it is now.
  [[nodiscard]] api_result<void> catch_up(std::string_view id);
  /// Adds the last uses noted in memory, and drops an overlap that has ended.
  void with_live_notes(token& t) const;
  /// Writes a new token and publishes it.
  [[nodiscard]] api_result<void> save_new(const token& t, std::string_view marker = {});
  /// Writes `t` over `expected`, the record it was read from, and publishes it. False when the
  /// record has changed or gone meanwhile: nothing written, `catch_up` done, read it again.
  [[nodiscard]] api_result<bool> save_over(const token& t, const store::token_record& expected,
                                           const store::digest* replaced);
  // One read-modify-write each; nullopt (false): the token changed meanwhile, try again.
  [[nodiscard]] api_result<std::optional<token>> update_once(const auth_entry& caller,
                                                             std::string_view id,
                                                             const token_spec& spec,
                                                             token* replaced);
  [[nodiscard]] api_result<std::optional<issued>> rotate_once(const auth_entry& caller,
                                                              std::string_view id,
                                                              std::chrono::seconds overlap,
                                                              token* replaced);
  [[nodiscard]] api_result<std::optional<bool>> erase_once(std::string_view id, token* replaced);
  [[nodiscard]] api_result<issued> insert(token t, std::string_view marker = {},
                                          std::optional<std::string> value = std::nullopt);

  store::token_store& store_;
  authorizer& auth_;
  const clock& clock_;
  std::mutex write_mutex_;
};

} // namespace tokengate::tokenapi
