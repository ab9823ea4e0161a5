// The sanitizer build's guard of proxy/openssl_memory.hpp: a block of OpenSSL's freed with
// free() must be an AddressSanitizer report. The test (tests/unit/proxy/CMakeLists.txt) passes
// only when the report comes; without the guard's header the free would pass unseen, as it
// would corrupt two heaps in a release build, where OpenSSL's blocks are mimalloc's.
#include <openssl/crypto.h>

#include <cstdio>
#include <cstdlib>

int main() {
  void* block = OPENSSL_malloc(32);
  if (block == nullptr)
    return 2;
  std::free(block); // the mistake the guard is there to catch
  std::puts("freed without a report");
  return 0;
}
