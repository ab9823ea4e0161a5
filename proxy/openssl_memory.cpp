// OpenSSL's allocations from mimalloc: see proxy/openssl_memory.hpp.
#include "proxy/openssl_memory.hpp"

#include <cstddef>
#include <string>

#ifdef TOKENGATE_MIMALLOC
#include <dlfcn.h>
#include <openssl/crypto.h>
#endif

namespace tokengate::proxy {
namespace {

std::string& allocator_name() {
  static std::string name = "system";
  return name;
}

#ifdef TOKENGATE_MIMALLOC

// mimalloc's functions, found once by the constructor below; never changed after.
void* (*mi_malloc)(std::size_t) = nullptr;
void* (*mi_realloc)(void*, std::size_t) = nullptr;
void (*mi_free)(void*) = nullptr;

void* openssl_malloc(std::size_t n, const char*, int) { return mi_malloc(n); }
void* openssl_realloc(void* p, std::size_t n, const char*, int) { return mi_realloc(p, n); }
void openssl_free(void* p, const char*, int) { mi_free(p); }

// Priority 101, the first an application may use: before every static initializer of the
// program, Asio's OpenSSL set-up among them. The libraries' own initializers ran before it and
// allocate nothing of OpenSSL's; were it otherwise, CRYPTO_set_mem_functions refuses and OpenSSL
// keeps the C library's malloc, which the "listening" line then says.
__attribute__((constructor(101))) void route_openssl_to_mimalloc() {
  // Never closed: OpenSSL frees into it until the process ends.
  void* lib = ::dlopen("libmimalloc.so.2", RTLD_NOW | RTLD_LOCAL);
  if (lib == nullptr)
    return;
  mi_malloc = reinterpret_cast<void* (*)(std::size_t)>(::dlsym(lib, "mi_malloc"));
  mi_realloc = reinterpret_cast<void* (*)(void*, std::size_t)>(::dlsym(lib, "mi_realloc"));
  mi_free = reinterpret_cast<void (*)(void*)>(::dlsym(lib, "mi_free"));
  auto* version = reinterpret_cast<int (*)()>(::dlsym(lib, "mi_version"));
  if (mi_malloc == nullptr || mi_realloc == nullptr || mi_free == nullptr || version == nullptr)
    return;
  if (CRYPTO_set_mem_functions(openssl_malloc, openssl_realloc, openssl_free) != 1)
    return;
  const int v = version(); // 209 for 2.0.9
  allocator_name() = "mimalloc " + std::to_string(v / 100) + "." + std::to_string(v / 10 % 10) +
                     "." + std::to_string(v % 10);
}

#endif

} // namespace

std::string_view openssl_allocator() { return allocator_name(); }

} // namespace tokengate::proxy
