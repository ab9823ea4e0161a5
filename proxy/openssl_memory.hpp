#pragma once

#include <string_view>

namespace tokengate::proxy {

/// Where OpenSSL takes its memory from now: "mimalloc 2.0.9"; "system, checked" in the sanitizer
/// builds; or "system" (the C library's malloc).
///
/// A resumed TLS handshake makes some 660 allocations, nearly all of them OpenSSL's, and frees
/// them within the handshake. In a process with threads, as tokengate is, glibc's malloc and
/// free took about 9% of a handshake's CPU samples, against 5.5% in nginx's single-threaded
/// workers (BENCHMARKS.md, "The allocator"). So, in the binaries that link
/// proxy/openssl_memory.cpp (the server, and the tests of its TLS paths), OpenSSL allocates from
/// mimalloc (Debian's libmimalloc2.0), and everything else from the C library: mimalloc for the
/// whole process would hold the token index in 10% more memory.
///
/// OpenSSL's allocator can only be chosen before its first allocation, so this is done by a
/// constructor of that file, before any static initializer of the program; mimalloc is opened
/// with dlopen(RTLD_LOCAL), so that its malloc does not take the C library's place for the rest
/// of the process. Without the library OpenSSL keeps the C library's malloc.
///
/// Memory must never cross between the two: a block of OpenSSL's is freed by OpenSSL (e.g.
/// OPENSSL_free), never by free(). The sanitizer builds, where AddressSanitizer must see every
/// allocation, give OpenSSL the C library's malloc with a header of ours in front of each block,
/// so that a crossing is a sanitizer report in the test suite.
std::string_view openssl_allocator();

/// Why a build that links mimalloc does not give it to OpenSSL (the library could not be opened,
/// say); empty when it does, or when the build does not ask for it.
std::string_view openssl_allocator_fallback();

} // namespace tokengate::proxy
