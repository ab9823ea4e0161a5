#pragma once

#include "tokenapi/ip.hpp"

#include <string>
#include <string_view>
#include <vector>

namespace tokengate::tokenapi {

/// One entry of the audit trail (README "Audit trail"): a token change, or a token API call
/// refused for its key, address or permissions. Holds names, never values.
struct audit_event {
  std::string_view operation;       ///< create, update, rotate, delete, bootstrap, list, get
  std::string_view actor_id;        ///< the caller's token id; empty when none; "system"
  std::string target_id;            ///< the token acted on, when known
  std::string target_name;          ///< its name, when known
  std::string client;               ///< the address the call was decided on; empty for system
  std::vector<std::string> changed; ///< the fields that changed (names only)
  unsigned status = 0;              ///< the answer's status
  bool previous_value = false;      ///< the caller used a replaced value (during its overlap)
};

/// Where audit events go. Implementations must be thread-safe. When `record` returns, a change's
/// event (status below 300) is where the trail keeps it (an append-only file: synced), or is
/// held and `ready()` answers false until it has been written.
class audit_sink {
public:
  virtual ~audit_sink() = default;
  virtual void record(const audit_event& e) = 0;
  /// Whether a change may be made now: writes the events held back (in order) first, and is
  /// false while they cannot be written. The token API refuses changes (503) while it is false.
  [[nodiscard]] virtual bool ready() = 0;
};

} // namespace tokengate::tokenapi
