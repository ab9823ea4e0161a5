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

// The allocator behind OpenSSL's functions below: set once by the constructor, before OpenSSL's
// first allocation, and never changed. Plain pointers, constant-initialized: no guard on each
// allocation, and nothing destroyed at exit while OpenSSL may still free.
void* (*backend_malloc)(std::size_t) = nullptr;
void* (*backend_realloc)(void*, std::size_t) = nullptr;
void (*backend_free)(void*) = nullptr;

/// What openssl_allocator() says while ours are OpenSSL's functions, and why a build that asks
/// for mimalloc does not have it. Written by the constructor, read at start-up.
struct allocator_facts {
  std::string name = "system";
  std::string fallback;
};

allocator_facts& facts() {
  static allocator_facts f;
  return f;
}

// OpenSSL's own contract, as its default functions keep it: no block for 0 bytes, and a
// realloc to 0 bytes frees.
void* openssl_malloc(std::size_t n, const char*, int) {
  return n == 0 ? nullptr : backend_malloc(n);
}

void* openssl_realloc(void* p, std::size_t n, const char*, int) {
  if (p == nullptr)
    return openssl_malloc(n, nullptr, 0);
  if (n == 0) {
    backend_free(p);
    return nullptr;
  }
  return backend_realloc(p, n);
}

void openssl_free(void* p, const char*, int) {
  if (p != nullptr)
    backend_free(p);
}

#if defined(TOKENGATE_OPENSSL_CHECKED)
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

/// The C library's malloc behind the header.
bool choose_backend(allocator_facts& f) {
  backend_malloc = checked_malloc;
  backend_realloc = checked_realloc;
  backend_free = checked_free;
  f.name = "system, checked";
  return true;
}
#elif defined(TOKENGATE_MIMALLOC)
/// Opens mimalloc and takes its functions; false (and `f.fallback` says why) when it cannot.
bool choose_backend(allocator_facts& f) {
  // Never closed: OpenSSL frees into it until the process ends.
  void* lib = ::dlopen("libmimalloc.so.2", RTLD_NOW | RTLD_LOCAL);
  if (lib == nullptr) {
    const char* why = ::dlerror();
    f.fallback = why != nullptr ? why : "libmimalloc.so.2 cannot be opened";
    return false;
  }
  auto* m = reinterpret_cast<void* (*)(std::size_t)>(::dlsym(lib, "mi_malloc"));
  auto* r = reinterpret_cast<void* (*)(void*, std::size_t)>(::dlsym(lib, "mi_realloc"));
  auto* d = reinterpret_cast<void (*)(void*)>(::dlsym(lib, "mi_free"));
  auto* version = reinterpret_cast<int (*)()>(::dlsym(lib, "mi_version"));
  if (m == nullptr || r == nullptr || d == nullptr || version == nullptr) {
    f.fallback = "libmimalloc.so.2 lacks mi_malloc, mi_realloc, mi_free or mi_version";
    return false;
  }
  backend_malloc = m;
  backend_realloc = r;
  backend_free = d;
  const int v = version(); // 209 for 2.0.9
  f.name = "mimalloc " + std::to_string(v / 100) + "." + std::to_string(v / 10 % 10) + "." +
           std::to_string(v % 10);
  return true;
}
#else
/// A build without either: OpenSSL keeps its defaults.
bool choose_backend(allocator_facts&) { return false; }
#endif

// Priority 101, the first an application may use: before every static initializer of the
// program, Asio's OpenSSL set-up among them. The libraries' own initializers ran before it and
// allocate nothing of OpenSSL's; were it otherwise, CRYPTO_set_mem_functions refuses and OpenSSL
// keeps the C library's malloc, which openssl_allocator() then says.
__attribute__((constructor(101))) void choose_openssl_allocator() {
  auto& f = facts();
  if (choose_backend(f) &&
      CRYPTO_set_mem_functions(openssl_malloc, openssl_realloc, openssl_free) != 1)
    f.fallback = "OpenSSL had allocated before its allocator could be chosen";
}

} // namespace

std::string_view openssl_allocator() {
  // What OpenSSL uses now, not what was asked for: ours, or its defaults (the C library's).
  CRYPTO_malloc_fn m = nullptr;
  CRYPTO_realloc_fn r = nullptr;
  CRYPTO_free_fn f = nullptr;
  CRYPTO_get_mem_functions(&m, &r, &f);
  return m == openssl_malloc ? std::string_view(facts().name) : std::string_view("system");
}

std::string_view openssl_allocator_fallback() { return facts().fallback; }

} // namespace tokengate::proxy
