#include "common/ids.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <pthread.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>

namespace bpmc {
namespace {

constexpr char kHexDigits[] = "0123456789abcdef";

// Value of a hexadecimal digit in either case, or -1.
inline int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// A process without working randomness must not hand out ids or keys:
// carrying on would produce guessable or colliding values.
[[noreturn]] void DieNoRandomness() {
  std::fputs("bpmc: OpenSSL RAND_bytes failed; no secure randomness available\n", stderr);
  std::abort();
}

void FillRandom(unsigned char* out, size_t n) {
  while (n > 0) {
    const int chunk = n > (1u << 30) ? (1 << 30) : static_cast<int>(n);
    if (RAND_bytes(out, chunk) != 1) DieNoRandomness();
    out += chunk;
    n -= static_cast<size_t>(chunk);
  }
}

// The random bits of ids, drawn from RAND_bytes a block at a time: one
// RAND_bytes call costs a getpid() syscall (OpenSSL's fork check), once per
// single-event request before this (seen with strace). After a fork the child
// must not reuse the bytes its parent already handed out: a fork bumps the
// generation and every thread's block is then thrown away.
std::atomic<uint64_t> fork_generation{0};

void FillIdRandom(unsigned char* out, size_t n) {
  static std::once_flag atfork_once;
  std::call_once(atfork_once,
                 [] { pthread_atfork(nullptr, nullptr, [] { fork_generation.fetch_add(1); }); });
  constexpr size_t kBlock = 4096;
  struct Buffer {
    unsigned char bytes[kBlock];
    size_t used = kBlock;
    uint64_t generation = 0;
  };
  thread_local Buffer buf;
  const uint64_t generation = fork_generation.load(std::memory_order_relaxed);
  if (buf.generation != generation) {
    buf.used = kBlock;
    buf.generation = generation;
  }
  while (n > 0) {
    if (buf.used == kBlock) {
      FillRandom(buf.bytes, kBlock);
      buf.used = 0;
    }
    const size_t take = std::min(n, kBlock - buf.used);
    std::memcpy(out, buf.bytes + buf.used, take);
    buf.used += take;
    out += take;
    n -= take;
  }
}

}  // namespace

std::optional<std::string> CanonicalUuid(std::string_view text) {
  if (text.size() != 36) return std::nullopt;
  std::string out(36, '-');
  for (size_t i = 0; i < 36; ++i) {
    const char c = text[i];
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (c != '-') return std::nullopt;
      continue;
    }
    const int v = HexValue(c);
    if (v < 0) return std::nullopt;
    out[i] = kHexDigits[v];
  }
  return out;
}

std::string NewUuidV7(int64_t unix_micros) {
  unsigned char b[16];
  FillIdRandom(b, sizeof(b));
  // 48-bit big-endian Unix milliseconds; times before the epoch clamp to 0.
  const uint64_t ms = unix_micros > 0 ? static_cast<uint64_t>(unix_micros / 1000) : 0;
  for (int i = 0; i < 6; ++i) b[i] = static_cast<unsigned char>(ms >> (40 - 8 * i));
  b[6] = static_cast<unsigned char>(0x70 | (b[6] & 0x0f));  // version 7
  b[8] = static_cast<unsigned char>(0x80 | (b[8] & 0x3f));  // variant 10

  std::string out(36, '-');
  size_t pos = 0;
  for (int i = 0; i < 16; ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) ++pos;
    out[pos++] = kHexDigits[b[i] >> 4];
    out[pos++] = kHexDigits[b[i] & 0x0f];
  }
  return out;
}

std::string RandomBytes(size_t n) {
  std::string out(n, '\0');
  if (n > 0) FillRandom(reinterpret_cast<unsigned char*>(out.data()), n);
  return out;
}

std::string HexEncode(std::string_view bytes) {
  std::string out(bytes.size() * 2, '0');
  for (size_t i = 0; i < bytes.size(); ++i) {
    const auto c = static_cast<unsigned char>(bytes[i]);
    out[2 * i] = kHexDigits[c >> 4];
    out[2 * i + 1] = kHexDigits[c & 0x0f];
  }
  return out;
}

std::string Base64UrlEncode(std::string_view bytes) {
  static const char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string out;
  out.reserve((bytes.size() * 4 + 2) / 3);
  uint32_t acc = 0;
  int bits = 0;
  for (unsigned char c : bytes) {
    acc = (acc << 8) | c;
    bits += 8;
    while (bits >= 6) {
      bits -= 6;
      out.push_back(kAlphabet[(acc >> bits) & 0x3f]);
    }
  }
  if (bits > 0) out.push_back(kAlphabet[(acc << (6 - bits)) & 0x3f]);
  return out;
}

std::string Sha256(std::string_view data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (EVP_Digest(data.data(), data.size(), md, &len, EVP_sha256(), nullptr) != 1 || len != 32) {
    // Only on allocation failure inside OpenSSL.
    std::fputs("bpmc: EVP_Digest(SHA-256) failed\n", stderr);
    std::abort();
  }
  return std::string(reinterpret_cast<const char*>(md), len);
}

std::string HmacSha256(std::string_view key, std::string_view data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  // HMAC() reads `key` only when key_len > 0, so an empty key is fine.
  static const char kEmpty = 0;
  const char* key_ptr = key.empty() ? &kEmpty : key.data();
  if (key.size() > static_cast<size_t>(INT32_MAX) ||
      HMAC(EVP_sha256(), key_ptr, static_cast<int>(key.size()),
           reinterpret_cast<const unsigned char*>(data.data()), data.size(), md, &len) == nullptr ||
      len != 32) {
    std::fputs("bpmc: HMAC-SHA256 failed\n", stderr);
    std::abort();
  }
  return std::string(reinterpret_cast<const char*>(md), len);
}

bool ConstantTimeEquals(std::string_view a, std::string_view b) {
  const std::string da = Sha256(a), db = Sha256(b);
  return CRYPTO_memcmp(da.data(), db.data(), da.size()) == 0;
}

}  // namespace bpmc
