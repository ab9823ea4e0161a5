#pragma once

// The files an operator names (the config file, certificates, keys, CAs), read at start-up and
// on every reload: regular files of a bounded size only. A FIFO would block the read for good
// and a device such as /dev/zero would fill memory.

#include <cstddef>
#include <optional>
#include <string>

namespace tokengate::proxy {

/// The content of a file, or why it was not read.
struct file_text {
  std::optional<std::string> text;
  std::string error; ///< without text: the reason, e.g. "not a regular file"
};

/// The largest config file read.
inline constexpr std::size_t max_config_file_bytes = 1 << 20;
/// The largest certificate, key or CA file loaded (a CA bundle may be large).
inline constexpr std::size_t max_pem_file_bytes = 4 << 20;

/// Reads the whole file at `path` if it is a regular file (symlinks followed) of at most
/// `max_bytes`. Anything else (a FIFO, a device, a directory) is refused without waiting: the
/// open does not block. Reasons: the system's ("No such file or directory"), "not a regular
/// file", "larger than N bytes". Thread-safe.
[[nodiscard]] file_text read_regular_file(const std::string& path, std::size_t max_bytes);

/// Opens `path` for appending (made with mode 0600 when missing) if it is a regular file, without
/// waiting (a FIFO is refused, not waited on): the descriptor, or -1 with the reason in `error`.
[[nodiscard]] int open_regular_for_appending(const std::string& path, std::string& error);

/// The same checks without reading: why `path` would be refused, or nullopt. For a file that a
/// library opens itself.
[[nodiscard]] std::optional<std::string> check_regular_file(const std::string& path,
                                                            std::size_t max_bytes);

} // namespace tokengate::proxy
