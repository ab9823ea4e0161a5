#pragma once

#include "tokenapi/rfc3339.hpp"

#include <atomic>
#include <chrono>

namespace tokengate::tokenapi {

/// Where the domain reads the time. Thread-safe.
class clock {
public:
  virtual ~clock() = default;
  [[nodiscard]] virtual timestamp now() const noexcept = 0;
};

class system_clock final : public clock {
public:
  timestamp now() const noexcept override {
    return std::chrono::floor<std::chrono::seconds>(std::chrono::system_clock::now());
  }
};

/// A clock that only moves when told to: for tests.
class manual_clock final : public clock {
public:
  explicit manual_clock(timestamp start) : now_(start.time_since_epoch().count()) {}
  timestamp now() const noexcept override { return timestamp(std::chrono::seconds(now_.load())); }
  void advance(std::chrono::seconds by) { now_ += by.count(); }

private:
  std::atomic<std::chrono::seconds::rep> now_;
};

} // namespace tokengate::tokenapi
