// OpenSSL's allocations from mimalloc: see proxy/openssl_memory.hpp.
#include "proxy/openssl_memory.hpp"

#include <cstddef>
#include <cstdlib>
#include <string>

#include <openssl/crypto.h>

#ifdef TOKENGATE_MIMALLOC
#include <dlfcn.h>
#endif

// Under AddressSanitizer (GCC's macro, or clang's feature) OpenSSL's blocks carry a header of
// ours: see `checked_malloc`.
#if defined(__SANITIZE_ADDRESS__)
#define TOKENGATE_OPENSSL_CHECKED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TOKENGATE_OPENSSL_CHECKED 1
#endif
#endif

namespace tokengate::proxy {
namespace {

/// The allocator behind OpenSSL's functions below, chosen once by the constructor.
struct backend {
  void* (*malloc)(std::size_t) = nullptr;
  void* (*realloc)(void*, std::size_t) = nullptr;
  void (*free)(void*) = nullptr;
  std::string name = "system"; ///< what openssl_allocator() says while ours are OpenSSL's
  std::string fallback;        ///< why a build that asks for mimalloc does not have it
};

backend& chosen() {
  static backend b;
  return b;
}

// OpenSSL's own contract, as its default functions keep it: no block for 0 bytes, and a
// realloc to 0 bytes frees.
void* openssl_malloc(std::size_t n, const char*, int) {
  return n == 0 ? nullptr : chosen().malloc(n);
}

void* openssl_realloc(void* p, std::size_t n, const char*, int) {
  if (p == nullptr)
    return openssl_malloc(n, nullptr, 0);
  if (n == 0) {
    chosen().free(p);
    return nullptr;
  }
  return chosen().realloc(p, n);
}

void openssl_free(void* p, const char*, int) {
  if (p != nullptr)
    chosen().free(p);
}

#ifdef TOKENGATE_OPENSSL_CHECKED
// The sanitizer builds keep the C library's malloc (AddressSanitizer's), but every block
// OpenSSL gets starts 16 bytes into one: a block of OpenSSL's freed with free(), or one of
// malloc's handed to OpenSSL to free, is then a report of AddressSanitizer's in the test suite,
// not a silent corruption of two heaps in production, where OpenSSL's blocks are mimalloc's.
constexpr std::size_t header = 16; // keeps malloc's 16-byte alignment

void* checked_malloc(std::size_t n) {
  auto* block = static_cast<unsigned char*>(std::malloc(n + header));
  return block == nullptr ? nullptr : block + header;
}

void* checked_realloc(void* p, std::size_t n) {
  auto* block = static_cast<unsigned char*>(
      std::realloc(static_cast<unsigned char*>(p) - header, n + header));
  return block == nullptr ? nullptr : block + header;
}

void checked_free(void* p) { std::free(static_cast<unsigned char*>(p) - header); }
#endif

/// Opens mimalloc and takes its functions; false (and `b.fallback` says why) when it cannot.
[[maybe_unused]] bool open_mimalloc([[maybe_unused]] backend& b) {
#ifdef TOKENGATE_MIMALLOC
  // Never closed: OpenSSL frees into it until the process ends.
  void* lib = ::dlopen("libmimalloc.so.2", RTLD_NOW | RTLD_LOCAL);
  if (lib == nullptr) {
    const char* why = ::dlerror();
    b.fallback = why != nullptr ? why : "libmimalloc.so.2 cannot be opened";
    return false;
  }
  b.malloc = reinterpret_cast<void* (*)(std::size_t)>(::dlsym(lib, "mi_malloc"));
  b.realloc = reinterpret_cast<void* (*)(void*, std::size_t)>(::dlsym(lib, "mi_realloc"));
  b.free = reinterpret_cast<void (*)(void*)>(::dlsym(lib, "mi_free"));
  auto* version = reinterpret_cast<int (*)()>(::dlsym(lib, "mi_version"));
  if (b.malloc == nullptr || b.realloc == nullptr || b.free == nullptr || version == nullptr) {
    b.fallback = "libmimalloc.so.2 lacks mi_malloc, mi_realloc, mi_free or mi_version";
    return false;
  }
  const int v = version(); // 209 for 2.0.9
  b.name = "mimalloc " + std::to_string(v / 100) + "." + std::to_string(v / 10 % 10) + "." +
           std::to_string(v % 10);
  return true;
#else
  return false;
#endif
}

// Priority 101, the first an application may use: before every static initializer of the
// program, Asio's OpenSSL set-up among them. The libraries' own initializers ran before it and
// allocate nothing of OpenSSL's; were it otherwise, CRYPTO_set_mem_functions refuses and OpenSSL
// keeps the C library's malloc, which openssl_allocator() then says.
__attribute__((constructor(101))) void choose_openssl_allocator() {
  auto& b = chosen();
#ifdef TOKENGATE_OPENSSL_CHECKED
  b.malloc = checked_malloc;
  b.realloc = checked_realloc;
  b.free = checked_free;
  b.name = "system, checked";
#else
  if (!open_mimalloc(b))
    return;
#endif
  if (CRYPTO_set_mem_functions(openssl_malloc, openssl_realloc, openssl_free) != 1)
    b.fallback = "OpenSSL had allocated before its allocator could be chosen";
}

} // namespace

std::string_view openssl_allocator() {
  // What OpenSSL uses now, not what was asked for: ours, or its defaults (the C library's).
  CRYPTO_malloc_fn m = nullptr;
  CRYPTO_realloc_fn r = nullptr;
  CRYPTO_free_fn f = nullptr;
  CRYPTO_get_mem_functions(&m, &r, &f);
  return m == openssl_malloc ? std::string_view(chosen().name) : std::string_view("system");
}

std::string_view openssl_allocator_fallback() { return chosen().fallback; }

} // namespace tokengate::proxy
