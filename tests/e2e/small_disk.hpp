#pragma once

#include "tests/support/process.hpp"

#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>

namespace tokengate::test {

/// A tmpfs of `size` mounted on `at` (made), unmounted when it goes: a disk that fills up.
/// Mounting needs root, as CI has; elsewhere `mounted()` is false.
class small_disk {
public:
  small_disk(const std::filesystem::path& at, std::string_view size) : at_(at) {
    std::filesystem::create_directories(at_);
    if (::geteuid() != 0)
      return;
    process mount(
        {"/usr/bin/mount", "-t", "tmpfs", "-o", "size=" + std::string(size), "tmpfs", at_.string()},
        at_.parent_path());
    mounted_ = mount.wait(std::chrono::seconds(10)) == 0;
  }
  ~small_disk() {
    if (mounted_)
      (void)process({"/usr/bin/umount", "-l", at_.string()}, at_.parent_path())
          .wait(std::chrono::seconds(10));
  }
  small_disk(const small_disk&) = delete;
  small_disk& operator=(const small_disk&) = delete;

  [[nodiscard]] bool mounted() const { return mounted_; }

  /// Fills what is left with one file.
  void fill() {
    std::ofstream out(at_ / "filler", std::ios::binary);
    const std::string block(64 * 1024, 'x');
    while (out.write(block.data(), static_cast<std::streamsize>(block.size())) && out.flush()) {
    }
  }
  void free() { std::filesystem::remove(at_ / "filler"); }

private:
  std::filesystem::path at_;
  bool mounted_ = false;
};

} // namespace tokengate::test
