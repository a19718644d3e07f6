// Spool record layout, version 1 (all integers little-endian):
//
//   u8      version = 1
//   str     id, api_key_id, connector, operation, make_account_id,
//           error_type, error_message        (each: varint length, bytes)
//   i64     timestamp_us                     (8 bytes, two's complement)
//   u8      status                           (0 success, 1 error)
//   u8      has_duration                     (0 or 1)
//   f64     duration_ms                      (8 bytes IEEE 754, only if has_duration)
//
// Varints are LEB128, at most 5 bytes, minimal (no redundant 0x80 groups), so
// every event has exactly one encoding and Decode(Encode(e)) == e. Decode
// accepts only that canonical form and refuses everything else.

#include <cmath>
#include <cstring>
#include <utility>

#include "ingestion/event.h"

namespace bpmc::ingestion {
namespace {

constexpr uint8_t kVersion = 1;

void PutVarint(std::string* out, uint32_t v) {
  while (v >= 0x80) {
    out->push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out->push_back(static_cast<char>(v));
}

void PutString(std::string* out, const std::string& s) {
  // Strings in an event are bounded by the parser far below 4 GiB; a longer
  // one cannot come from a request and is cut rather than mis-framed.
  const uint32_t len = s.size() > UINT32_MAX ? UINT32_MAX : static_cast<uint32_t>(s.size());
  PutVarint(out, len);
  out->append(s.data(), len);
}

void PutU64(std::string* out, uint64_t v) {
  char b[8];
  for (int i = 0; i < 8; ++i) b[i] = static_cast<char>(v >> (8 * i));
  out->append(b, 8);
}

class Reader {
 public:
  explicit Reader(std::string_view in) : p_(in.data()), end_(in.data() + in.size()) {}

  bool Byte(uint8_t* v) {
    if (p_ == end_) return false;
    *v = static_cast<uint8_t>(*p_++);
    return true;
  }

  bool Varint(uint32_t* v) {
    uint32_t result = 0;
    for (int shift = 0; shift < 35; shift += 7) {
      uint8_t b = 0;
      if (!Byte(&b)) return false;
      if (shift == 28 && b > 0x0f) return false;  // more than 32 bits
      if (shift > 0 && b == 0) return false;      // non-minimal encoding
      result |= static_cast<uint32_t>(b & 0x7f) << shift;
      if ((b & 0x80) == 0) {
        *v = result;
        return true;
      }
    }
    return false;
  }

  bool String(std::string* s) {
    uint32_t len = 0;
    if (!Varint(&len) || len > static_cast<size_t>(end_ - p_)) return false;
    s->assign(p_, len);
    p_ += len;
    return true;
  }

  bool U64(uint64_t* v) {
    if (end_ - p_ < 8) return false;
    uint64_t r = 0;
    for (int i = 0; i < 8; ++i) r |= static_cast<uint64_t>(static_cast<uint8_t>(p_[i])) << (8 * i);
    p_ += 8;
    *v = r;
    return true;
  }

  bool AtEnd() const { return p_ == end_; }

 private:
  const char* p_;
  const char* end_;
};

}  // namespace

std::string EncodeEventRecord(const UsageEvent& event) {
  std::string out;
  out.reserve(1 + 7 * 2 + event.id.size() + event.api_key_id.size() + event.connector.size() +
              event.operation.size() + event.make_account_id.size() + event.error_type.size() +
              event.error_message.size() + 8 + 2 + 8);
  out.push_back(static_cast<char>(kVersion));
  PutString(&out, event.id);
  PutString(&out, event.api_key_id);
  PutString(&out, event.connector);
  PutString(&out, event.operation);
  PutString(&out, event.make_account_id);
  PutString(&out, event.error_type);
  PutString(&out, event.error_message);
  PutU64(&out, static_cast<uint64_t>(event.timestamp_us));
  out.push_back(event.status == EventStatus::kError ? 1 : 0);
  if (event.duration_ms.has_value()) {
    out.push_back(1);
    uint64_t bits = 0;
    std::memcpy(&bits, &*event.duration_ms, sizeof(bits));
    PutU64(&out, bits);
  } else {
    out.push_back(0);
  }
  return out;
}

bool DecodeEventRecord(std::string_view record, UsageEvent* event) {
  if (event == nullptr) return false;
  Reader r(record);
  uint8_t version = 0;
  if (!r.Byte(&version) || version != kVersion) return false;

  UsageEvent e;
  uint64_t ts = 0;
  uint8_t status = 0;
  uint8_t has_duration = 0;
  if (!r.String(&e.id) || !r.String(&e.api_key_id) || !r.String(&e.connector) ||
      !r.String(&e.operation) || !r.String(&e.make_account_id) || !r.String(&e.error_type) ||
      !r.String(&e.error_message) || !r.U64(&ts) || !r.Byte(&status) || status > 1 ||
      !r.Byte(&has_duration) || has_duration > 1) {
    return false;
  }
  e.timestamp_us = static_cast<int64_t>(ts);
  e.status = status == 1 ? EventStatus::kError : EventStatus::kSuccess;
  if (has_duration == 1) {
    uint64_t bits = 0;
    if (!r.U64(&bits)) return false;
    double d = 0;
    std::memcpy(&d, &bits, sizeof(d));
    if (!std::isfinite(d)) return false;  // the parser never produces one
    e.duration_ms = d;
  }
  if (!r.AtEnd()) return false;
  *event = std::move(e);
  return true;
}

}  // namespace bpmc::ingestion
