#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace bpmc {

// connectors.id is VARCHAR(50) (the seed's schema): the same limit wherever a
// connector id arrives (usage events, billing events, analytics filters).
inline constexpr size_t kMaxConnectorChars = 50;

// Returns the canonical lowercase 8-4-4-4-12 form of a UUID written in that
// form (either case), or nullopt. Pure.
std::optional<std::string> CanonicalUuid(std::string_view text);

// A new UUID version 7 (RFC 9562): 48 bits of Unix milliseconds then random
// bits, so ids made close in time sort close together in a B-tree index.
// The random bits come from RAND_bytes drawn 4 KB at a time per thread (ids
// are not secrets; keys use RandomBytes); a fork() discards the blocks, so a
// child never repeats its parent's ids. Thread-safe.
std::string NewUuidV7(int64_t unix_micros);

// `n` cryptographically random bytes (OpenSSL RAND_bytes). Thread-safe.
std::string RandomBytes(size_t n);

// Lowercase hexadecimal of `bytes`.
std::string HexEncode(std::string_view bytes);

// Unpadded base64url (RFC 4648 section 5) of `bytes`: 32 bytes -> 43
// characters of [A-Za-z0-9_-]. Used for bearer tokens. Pure.
std::string Base64UrlEncode(std::string_view bytes);

// SHA-256 digest of `data` (32 raw bytes).
std::string Sha256(std::string_view data);

// HMAC-SHA256 of `data` under `key` (32 raw bytes).
std::string HmacSha256(std::string_view key, std::string_view data);

// Whether two secrets are equal, in a time that tells nothing of where they
// differ nor of their lengths: compares SHA-256 digests of both without an early
// exit (OpenSSL CRYPTO_memcmp). For tokens, passwords of config files and signatures.
bool ConstantTimeEquals(std::string_view a, std::string_view b);

}  // namespace bpmc
