// The byte queue sessions read into: bytes appended at the end, taken from the front, the
// storage reused, grown or freed without losing a byte.
#include "proxy/byte_buffer.hpp"

#include <catch2/catch.hpp>

#include <string>

using tokengate::proxy::byte_buffer;

namespace {

void append(byte_buffer& b, std::string_view bytes) {
  auto space = b.prepare(bytes.size());
  REQUIRE(space.size() >= bytes.size());
  std::copy(bytes.begin(), bytes.end(), space.begin());
  b.commit(bytes.size());
}

std::string pattern(std::size_t n) {
  std::string s(n, '\0');
  for (std::size_t i = 0; i < n; ++i)
    s[i] = static_cast<char>('a' + i % 26);
  return s;
}

} // namespace

TEST_CASE("a new buffer is empty and holds no storage", "[byte_buffer]") {
  byte_buffer b;
  CHECK(b.empty());
  CHECK(b.size() == 0);
  CHECK(b.capacity() == 0);
  CHECK(b.data().empty());
}

TEST_CASE("committed bytes are the data, consumed ones leave the front", "[byte_buffer]") {
  byte_buffer b;
  auto space = b.prepare(16);
  CHECK(space.size() >= 16);
  CHECK(b.empty()); // prepared is not committed
  std::copy_n("hello world", 11, space.begin());
  b.commit(5);
  CHECK(b.data() == "hello");
  CHECK(b.size() == 5);

  append(b, ", there");
  CHECK(b.data() == "hello, there");
  b.consume(7);
  CHECK(b.data() == "there");
  CHECK_FALSE(b.empty());
  b.consume(0);
  CHECK(b.data() == "there");
  b.consume(100); // more than held: everything, no more
  CHECK(b.empty());
  CHECK(b.size() == 0);
  CHECK(b.data().empty());
}

TEST_CASE("emptying the buffer makes its whole storage writable again", "[byte_buffer]") {
  byte_buffer b;
  append(b, pattern(64));
  const auto cap = b.capacity();
  b.consume(64);
  auto space = b.prepare(cap);
  CHECK(b.capacity() == cap);
  CHECK(space.size() == cap);
}

TEST_CASE("compact moves the data to the front and keeps it", "[byte_buffer]") {
  byte_buffer b;
  append(b, pattern(100));
  const auto cap = b.capacity();
  b.consume(60);
  const auto before = std::string(b.data());
  CHECK(b.prepare(0).size() == cap - 100);
  b.compact();
  CHECK(b.data() == before);
  CHECK(b.capacity() == cap);
  CHECK(b.prepare(0).size() == cap - 40); // the consumed front is writable again
  b.compact();                            // already at the front: nothing changes
  CHECK(b.data() == before);
}

TEST_CASE("prepare reuses the consumed front before growing", "[byte_buffer]") {
  byte_buffer b;
  append(b, pattern(100));
  const auto cap = b.capacity();
  b.consume(90);
  const auto tail = std::string(b.data());
  auto space = b.prepare(cap - 10);
  CHECK(b.capacity() == cap);
  CHECK(space.size() >= cap - 10);
  CHECK(b.data() == tail);
  CHECK(space.data() == b.data().data() + b.size());
}

TEST_CASE("growing keeps every byte of the data", "[byte_buffer]") {
  byte_buffer b;
  const auto all = pattern(1 << 20);
  std::size_t written = 0;
  std::size_t taken = 0;
  std::string received;
  // Append in uneven steps, taking from the front now and then, so growth happens with data
  // at an offset.
  for (std::size_t step = 1; written < all.size(); step = step * 3 % 4099 + 1) {
    const auto n = std::min(step, all.size() - written);
    append(b, std::string_view(all).substr(written, n));
    written += n;
    REQUIRE(b.size() == written - taken);
    if (step % 5 == 0) {
      const auto k = b.size() / 3;
      received.append(b.data().substr(0, k));
      b.consume(k);
      taken += k;
    }
  }
  REQUIRE(b.data() == std::string_view(all).substr(taken));
  received.append(b.data());
  CHECK(received == all);
  CHECK(b.capacity() >= b.size());
}

TEST_CASE("a big prepare grows to fit and keeps the data", "[byte_buffer]") {
  byte_buffer b;
  append(b, "abc");
  b.consume(1);
  auto space = b.prepare(100000);
  CHECK(space.size() >= 100000);
  CHECK(b.capacity() >= 100002);
  CHECK(b.data() == "bc");
  b.commit(0);
  CHECK(b.data() == "bc");
}

TEST_CASE("shrink frees the storage of an empty buffer only", "[byte_buffer]") {
  byte_buffer b;
  append(b, pattern(5000));
  const auto cap = b.capacity();

  b.shrink(16); // holds data: kept
  CHECK(b.capacity() == cap);
  CHECK(b.data() == pattern(5000));

  b.consume(5000);
  b.shrink(cap); // small enough already: kept
  CHECK(b.capacity() == cap);

  b.shrink(16);
  CHECK(b.capacity() == 0);
  CHECK(b.empty());

  append(b, "again"); // usable after shrinking
  CHECK(b.data() == "again");
}

TEST_CASE("the block an emptied buffer gives back serves the next buffer on the thread",
          "[byte_buffer]") {
  byte_buffer a;
  append(a, "first");
  CHECK(a.capacity() == byte_buffer::block_size);
  const char* block = a.data().data();
  a.consume(5);
  a.shrink(0);
  CHECK(a.capacity() == 0);

  byte_buffer b;
  append(b, "second");
  CHECK(b.data().data() == block); // the same memory, no allocation
  CHECK(b.data() == "second");
  b.consume(6);
  b.shrink(0);

  // A buffer that outgrew its block frees its storage instead: a spare is always one block.
  byte_buffer big;
  append(big, pattern(byte_buffer::block_size + 1));
  CHECK(big.capacity() > byte_buffer::block_size);
  big.consume(big.size());
  big.shrink(0);
  byte_buffer next;
  append(next, "third");
  CHECK(next.capacity() == byte_buffer::block_size);
  CHECK(next.data().data() == block);
}

TEST_CASE("a moved buffer takes the storage and leaves an empty one, which gives back nothing",
          "[byte_buffer]") {
  byte_buffer a;
  append(a, "moved");
  const char* block = a.data().data();
  byte_buffer b(std::move(a));
  CHECK(b.data() == "moved");
  CHECK(b.data().data() == block);
  CHECK(a.capacity() == 0); // NOLINT(bugprone-use-after-move): the state a move leaves
  a.shrink(0);              // nothing to give back
  byte_buffer c;
  CHECK(c.prepare(10).data() != nullptr);
  append(c, "fresh");
  CHECK(c.data() == "fresh");
  CHECK(c.data().data() != block); // b still holds it
  a = std::move(b);
  CHECK(a.data() == "moved");
  CHECK(b.empty()); // NOLINT(bugprone-use-after-move)
}
