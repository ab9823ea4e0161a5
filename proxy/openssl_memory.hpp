#pragma once

#include <string_view>

namespace tokengate::proxy {

/// Where OpenSSL takes its memory from: "mimalloc 2.0.9", or "system" (the C library's malloc).
///
/// A TLS handshake makes some 700 allocations, nearly all of them OpenSSL's, and frees them
/// within the handshake. In a process with threads, as tokengate is, glibc's malloc spends about
/// a tenth of a resumed handshake's CPU on them (BENCHMARKS.md, "The allocator"). So, in the
/// binaries that link proxy/openssl_memory.cpp (the server, and the tests of its TLS paths),
/// OpenSSL allocates from mimalloc (Debian's libmimalloc2.0), and everything else from the C
/// library: mimalloc for the whole process would hold the token index in 10% more memory.
///
/// OpenSSL's allocator can only be chosen before its first allocation, so this is done by a
/// constructor of that file, before any static initializer of the program; mimalloc is opened
/// with dlopen(RTLD_LOCAL), so that its malloc does not take the C library's place for the rest
/// of the process. Without the library (or in the sanitizer builds, built without
/// TOKENGATE_MIMALLOC, where AddressSanitizer must see every allocation), OpenSSL keeps the C
/// library's malloc.
std::string_view openssl_allocator();

} // namespace tokengate::proxy
