#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace bpmc::ingestion {

// A durable append-only queue of opaque records in a directory, used while
// PostgreSQL is unreachable. Records live in numbered segment files
// ("<dir>/spool-<20-digit seq>.log"); each record is framed with its length and
// a CRC-32C so that a torn tail left by a crash (never acknowledged, because
// Append returns only after fdatasync) is detected and dropped on reopen.
// Frame: u32 little-endian payload length, u32 little-endian CRC-32C
// (Castagnoli) of the payload, payload. A segment is only ever appended to by
// the Spool that created it; after a restart every existing segment is sealed.
//
// Thread-safe: every method may be called from any thread.
class Spool {
 public:
  enum class AppendResult { kOk, kFull, kIoError };

  struct Segment {
    uint64_t seq = 0;
    std::vector<std::string> records;  // in append order
  };

  // The active segment is sealed once it holds at least this many bytes.
  static constexpr uint64_t kDefaultSegmentBytes = uint64_t{32} << 20;
  // Longest record Append accepts (and the reader believes in a frame header).
  static constexpr uint32_t kMaxRecordBytes = uint32_t{64} << 20;

  // Opens (creating it and its parents if needed) the spool in `dir`. Every
  // segment already there is sealed and kept for replay; the next Append
  // starts a new segment. Holds flock(LOCK_EX) on `dir` until destroyed, so a
  // second Spool on the same directory (in any process) fails to open.
  // Returns nullptr and sets *error on failure. `segment_bytes` > 0.
  static std::unique_ptr<Spool> Open(const std::string& dir, uint64_t max_bytes, std::string* error,
                                     uint64_t segment_bytes = kDefaultSegmentBytes);

  ~Spool();
  Spool(const Spool&) = delete;
  Spool& operator=(const Spool&) = delete;

  // Appends all `records` to the active segment with one write and one
  // fdatasync; kOk means they are durable. kFull (nothing written) when the
  // total on disk would exceed max_bytes, or when a record is empty or longer
  // than kMaxRecordBytes (such a batch can never be stored). kIoError when the
  // write or sync failed: nothing is promised (the records may still be
  // replayed), and the next Append starts a new segment. An empty batch is kOk.
  // Concurrent calls are serialised.
  AppendResult Append(const std::vector<std::string>& records);

  // Closes the active segment so that it becomes replayable; the next Append
  // starts a new one. No-op when there is no active segment. The active
  // segment is also sealed automatically once it reaches segment_bytes.
  void Seal();

  // The oldest sealed segment with its intact records (the prefix before the
  // first torn or corrupt frame), read from disk on every call; nullopt when
  // there is none or it cannot be read (try again later). Returns the same
  // segment again until it is Released.
  std::optional<Segment> OldestSealed();

  // Deletes sealed segment `seq` after its records are stored elsewhere.
  // No-op for the active segment or an unknown seq.
  void Release(uint64_t seq);

  // Bytes in all segment files, sealed and active (torn tails included), and
  // intact records in them. Kept in memory, lock-free.
  uint64_t BytesOnDisk() const;
  uint64_t PendingRecords() const;  // records in all segments, sealed or not
  uint64_t max_bytes() const { return max_bytes_; }

 private:
  struct Impl;
  Spool(std::unique_ptr<Impl> impl, uint64_t max_bytes);
  std::unique_ptr<Impl> impl_;
  const uint64_t max_bytes_;
};

}  // namespace bpmc::ingestion
