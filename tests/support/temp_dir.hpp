#pragma once

#include <filesystem>
#include <string>

namespace tokengate::test {

/// A fresh directory under the system temp dir, removed with everything in it on destruction.
class temp_dir {
public:
  temp_dir();
  ~temp_dir();
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;

  [[nodiscard]] const std::filesystem::path& path() const { return path_; }
  [[nodiscard]] std::filesystem::path operator/(const std::filesystem::path& p) const {
    return path_ / p;
  }

private:
  std::filesystem::path path_;
};

/// The whole content of the file at `p` ("" when it cannot be read).
[[nodiscard]] std::string read_file(const std::filesystem::path& p);

} // namespace tokengate::test
