#include "ingestion/spool.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <map>
#include <mutex>
#include <system_error>
#include <utility>

namespace bpmc::ingestion {
namespace {

constexpr size_t kHeaderBytes = 8;
constexpr char kPrefix[] = "spool-";
constexpr char kSuffix[] = ".log";
constexpr size_t kPrefixLen = sizeof(kPrefix) - 1;
constexpr size_t kSuffixLen = sizeof(kSuffix) - 1;
constexpr size_t kSeqDigits = 20;

// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), slicing-by-8.
using CrcTable = std::array<std::array<uint32_t, 256>, 8>;

constexpr CrcTable MakeCrcTable() {
  CrcTable t{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c >> 1) ^ ((c & 1u) != 0 ? 0x82F63B78u : 0u);
    t[0][i] = c;
  }
  for (size_t i = 0; i < 256; ++i) {
    for (size_t j = 1; j < 8; ++j) t[j][i] = (t[j - 1][i] >> 8) ^ t[0][t[j - 1][i] & 0xFFu];
  }
  return t;
}

constexpr CrcTable kCrcTable = MakeCrcTable();

uint32_t LoadLe32(const unsigned char* p) {
  return uint32_t{p[0]} | (uint32_t{p[1]} << 8) | (uint32_t{p[2]} << 16) | (uint32_t{p[3]} << 24);
}

void StoreLe32(uint32_t v, char* out) {
  for (int i = 0; i < 4; ++i) out[i] = static_cast<char>((v >> (8 * i)) & 0xFFu);
}

uint32_t Crc32c(const char* data, size_t n) {
  const auto& t = kCrcTable;
  const auto* p = reinterpret_cast<const unsigned char*>(data);
  uint32_t crc = 0xFFFFFFFFu;
  while (n >= 8) {
    const uint32_t lo = crc ^ LoadLe32(p);
    const uint32_t hi = LoadLe32(p + 4);
    crc = t[7][lo & 0xFFu] ^ t[6][(lo >> 8) & 0xFFu] ^ t[5][(lo >> 16) & 0xFFu] ^ t[4][lo >> 24] ^
          t[3][hi & 0xFFu] ^ t[2][(hi >> 8) & 0xFFu] ^ t[1][(hi >> 16) & 0xFFu] ^ t[0][hi >> 24];
    p += 8;
    n -= 8;
  }
  while (n-- > 0) crc = (crc >> 8) ^ t[0][(crc ^ *p++) & 0xFFu];
  return crc ^ 0xFFFFFFFFu;
}

std::string ErrnoMessage(const std::string& what, const std::string& path, int err) {
  return what + " " + path + ": " + std::generic_category().message(err);
}

// Walks the frames of `data` up to the first torn or corrupt one. An empty
// frame counts as corrupt: Append never writes one, and a zero-filled tail
// (which a crash can leave) would otherwise decode as empty records.
uint64_t ParseFrames(const std::string& data, std::vector<std::string>* records) {
  uint64_t count = 0;
  size_t pos = 0;
  const auto* bytes = reinterpret_cast<const unsigned char*>(data.data());
  while (data.size() - pos >= kHeaderBytes) {
    const uint32_t len = LoadLe32(bytes + pos);
    const uint32_t crc = LoadLe32(bytes + pos + 4);
    if (len == 0 || len > Spool::kMaxRecordBytes || len > data.size() - pos - kHeaderBytes) break;
    const char* payload = data.data() + pos + kHeaderBytes;
    if (Crc32c(payload, len) != crc) break;
    if (records != nullptr) records->emplace_back(payload, len);
    ++count;
    pos += kHeaderBytes + len;
  }
  return count;
}

// Reads a whole file; returns 0 or an errno value.
int ReadFile(const std::string& path, std::string* out) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return errno;
  out->clear();
  struct stat st {};
  if (::fstat(fd, &st) == 0 && st.st_size > 0) out->reserve(static_cast<size_t>(st.st_size));
  char buf[1 << 16];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n > 0) {
      out->append(buf, static_cast<size_t>(n));
    } else if (n == 0) {
      break;
    } else if (errno != EINTR) {
      const int err = errno;
      ::close(fd);
      return err;
    }
  }
  ::close(fd);
  return 0;
}

bool WriteAll(int fd, const std::string& data) {
  size_t done = 0;
  while (done < data.size()) {
    const ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    done += static_cast<size_t>(n);
  }
  return true;
}

std::string ParentDir(const std::string& path) {
  const size_t slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

bool SyncDir(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return false;
  const bool ok = ::fsync(fd) == 0;
  ::close(fd);
  return ok;
}

// mkdir -p; every directory it creates is made durable in its parent.
bool EnsureDir(const std::string& path, std::string* error) {
  if (::mkdir(path.c_str(), 0750) != 0) {
    if (errno == EEXIST) return true;
    if (errno != ENOENT) {
      *error = ErrnoMessage("cannot create spool directory", path, errno);
      return false;
    }
    const std::string parent = ParentDir(path);
    if (parent == path || !EnsureDir(parent, error)) {
      if (error->empty()) *error = ErrnoMessage("cannot create spool directory", path, ENOENT);
      return false;
    }
    if (::mkdir(path.c_str(), 0750) != 0) {
      if (errno == EEXIST) return true;
      *error = ErrnoMessage("cannot create spool directory", path, errno);
      return false;
    }
  }
  if (!SyncDir(ParentDir(path))) {
    *error = ErrnoMessage("cannot fsync parent of spool directory", path, errno);
    return false;
  }
  return true;
}

// "spool-<20 digits>.log" -> seq.
bool ParseSegmentName(const char* name, uint64_t* seq) {
  const size_t len = std::strlen(name);
  if (len != kPrefixLen + kSeqDigits + kSuffixLen) return false;
  if (std::strncmp(name, kPrefix, kPrefixLen) != 0) return false;
  if (std::strcmp(name + kPrefixLen + kSeqDigits, kSuffix) != 0) return false;
  uint64_t v = 0;
  for (size_t i = kPrefixLen; i < kPrefixLen + kSeqDigits; ++i) {
    const char c = name[i];
    if (c < '0' || c > '9') return false;
    const auto digit = static_cast<uint64_t>(c - '0');
    if (v > (UINT64_MAX - digit) / 10) return false;
    v = v * 10 + digit;
  }
  *seq = v;
  return true;
}

}  // namespace

struct Spool::Impl {
  struct SegmentStats {
    uint64_t bytes = 0;
    uint64_t records = 0;
  };

  std::string dir;
  uint64_t segment_bytes = kDefaultSegmentBytes;
  int dir_fd = -1;  // holds the flock; fsync target for directory changes

  std::mutex mu;
  // Guarded by mu.
  std::map<uint64_t, SegmentStats> sealed;
  uint64_t next_seq = 1;
  int active_fd = -1;
  uint64_t active_seq = 0;
  SegmentStats active;
  // Written under mu, read without it.
  std::atomic<uint64_t> bytes_on_disk{0};
  std::atomic<uint64_t> pending_records{0};

  ~Impl() {
    if (active_fd >= 0) ::close(active_fd);
    if (dir_fd >= 0) ::close(dir_fd);
  }

  std::string SegmentPath(uint64_t seq) const {
    char name[64];
    std::snprintf(name, sizeof(name), "spool-%020llu.log", static_cast<unsigned long long>(seq));
    return dir + "/" + name;
  }

  // Size and intact record count of a segment file, as Open and the replayer see it.
  int Scan(uint64_t seq, SegmentStats* stats) const {
    std::string data;
    if (const int err = ReadFile(SegmentPath(seq), &data); err != 0) return err;
    stats->bytes = data.size();
    stats->records = ParseFrames(data, nullptr);
    return 0;
  }

  bool CreateActive() {
    const uint64_t seq = next_seq++;
    const std::string path = SegmentPath(seq);
    const int fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
    if (fd < 0) return false;
    // The file's directory entry must be durable before anything in it is acknowledged.
    if (::fsync(dir_fd) != 0) {
      ::close(fd);
      ::unlink(path.c_str());
      return false;
    }
    active_fd = fd;
    active_seq = seq;
    active = SegmentStats{};
    return true;
  }

  // Closes the active segment; it becomes sealed unless it is empty.
  void RetireActive() {
    if (active_fd < 0) return;
    ::close(active_fd);
    active_fd = -1;
    if (active.bytes == 0) {
      const std::string path = SegmentPath(active_seq);
      if (::unlink(path.c_str()) == 0 || errno == ENOENT) return;
    }
    sealed[active_seq] = active;
  }

  // After a failed write or sync: cut the segment back to its acknowledged
  // prefix if possible, and never append to it again.
  void AbandonActive(uint64_t acked_bytes) {
    if (::ftruncate(active_fd, static_cast<off_t>(acked_bytes)) == 0) {
      ::fdatasync(active_fd);  // best effort; a surviving tail only replays unacked records
    } else {
      SegmentStats now;
      if (Scan(active_seq, &now) == 0) {
        bytes_on_disk += now.bytes - active.bytes;
        pending_records += now.records - active.records;
        active = now;
      }
    }
    RetireActive();
  }
};

Spool::Spool(std::unique_ptr<Impl> impl, uint64_t max_bytes)
    : impl_(std::move(impl)), max_bytes_(max_bytes) {}

Spool::~Spool() = default;

std::unique_ptr<Spool> Spool::Open(const std::string& dir, uint64_t max_bytes, std::string* error,
                                   uint64_t segment_bytes) {
  std::string err;
  auto fail = [&](std::string msg) {
    if (error != nullptr) *error = std::move(msg);
    return std::unique_ptr<Spool>();
  };
  if (dir.empty()) return fail("spool directory is empty");
  if (segment_bytes == 0) return fail("spool segment size must be positive");

  auto impl = std::make_unique<Impl>();
  impl->dir = dir;
  while (impl->dir.size() > 1 && impl->dir.back() == '/') impl->dir.pop_back();
  impl->segment_bytes = segment_bytes;

  if (!EnsureDir(impl->dir, &err)) return fail(err);
  impl->dir_fd = ::open(impl->dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (impl->dir_fd < 0) return fail(ErrnoMessage("cannot open spool directory", impl->dir, errno));
  if (::flock(impl->dir_fd, LOCK_EX | LOCK_NB) != 0 && errno == EWOULDBLOCK) {
    return fail("spool directory " + impl->dir + " is in use by another spool");
  }

  DIR* d = ::opendir(impl->dir.c_str());
  if (d == nullptr) return fail(ErrnoMessage("cannot list spool directory", impl->dir, errno));
  std::vector<uint64_t> seqs;
  errno = 0;
  while (const dirent* e = ::readdir(d)) {
    uint64_t seq = 0;
    if (ParseSegmentName(e->d_name, &seq)) seqs.push_back(seq);
  }
  const int readdir_err = errno;
  ::closedir(d);
  if (readdir_err != 0) {
    return fail(ErrnoMessage("cannot list spool directory", impl->dir, readdir_err));
  }

  uint64_t bytes = 0;
  uint64_t records = 0;
  for (const uint64_t seq : seqs) {
    Impl::SegmentStats stats;
    if (const int e = impl->Scan(seq, &stats); e != 0) {
      return fail(ErrnoMessage("cannot read spool segment", impl->SegmentPath(seq), e));
    }
    impl->sealed[seq] = stats;
    bytes += stats.bytes;
    records += stats.records;
    if (seq >= impl->next_seq) impl->next_seq = seq + 1;
  }
  impl->bytes_on_disk = bytes;
  impl->pending_records = records;
  return std::unique_ptr<Spool>(new Spool(std::move(impl), max_bytes));
}

Spool::AppendResult Spool::Append(const std::vector<std::string>& records) {
  if (records.empty()) return AppendResult::kOk;
  size_t total = 0;
  for (const std::string& r : records) {
    if (r.empty() || r.size() > kMaxRecordBytes) return AppendResult::kFull;
    total += kHeaderBytes + r.size();
  }
  std::string buf(total, '\0');
  char* out = buf.data();
  for (const std::string& r : records) {
    StoreLe32(static_cast<uint32_t>(r.size()), out);
    StoreLe32(Crc32c(r.data(), r.size()), out + 4);
    std::memcpy(out + kHeaderBytes, r.data(), r.size());
    out += kHeaderBytes + r.size();
  }

  Impl& s = *impl_;
  std::lock_guard<std::mutex> lock(s.mu);
  const uint64_t on_disk = s.bytes_on_disk.load();
  if (total > max_bytes_ || on_disk > max_bytes_ - total) return AppendResult::kFull;
  if (s.active_fd < 0 && !s.CreateActive()) return AppendResult::kIoError;
  if (!WriteAll(s.active_fd, buf) || ::fdatasync(s.active_fd) != 0) {
    // Never retry a failed fdatasync on the same file: the kernel may have
    // dropped the dirty pages and would report success the second time.
    s.AbandonActive(s.active.bytes);
    return AppendResult::kIoError;
  }
  s.active.bytes += total;
  s.active.records += records.size();
  s.bytes_on_disk += total;
  s.pending_records += records.size();
  if (s.active.bytes >= s.segment_bytes) s.RetireActive();
  return AppendResult::kOk;
}

void Spool::Seal() {
  std::lock_guard<std::mutex> lock(impl_->mu);
  impl_->RetireActive();
}

std::optional<Spool::Segment> Spool::OldestSealed() {
  Impl& s = *impl_;
  for (;;) {
    uint64_t seq = 0;
    {
      std::lock_guard<std::mutex> lock(s.mu);
      if (s.sealed.empty()) return std::nullopt;
      seq = s.sealed.begin()->first;
    }
    // Sealed files never change, so they are read without holding the lock.
    std::string data;
    const int err = ReadFile(s.SegmentPath(seq), &data);
    if (err == ENOENT) {
      // Released meanwhile, or removed behind our back: forget it either way.
      std::lock_guard<std::mutex> lock(s.mu);
      if (auto it = s.sealed.find(seq); it != s.sealed.end()) {
        s.bytes_on_disk -= it->second.bytes;
        s.pending_records -= it->second.records;
        s.sealed.erase(it);
      }
      continue;
    }
    if (err != 0) return std::nullopt;
    Segment segment;
    segment.seq = seq;
    ParseFrames(data, &segment.records);
    return segment;
  }
}

void Spool::Release(uint64_t seq) {
  Impl& s = *impl_;
  {
    std::lock_guard<std::mutex> lock(s.mu);
    auto it = s.sealed.find(seq);
    if (it == s.sealed.end()) return;
    if (::unlink(s.SegmentPath(seq).c_str()) != 0 && errno != ENOENT) return;
    s.bytes_on_disk -= it->second.bytes;
    s.pending_records -= it->second.records;
    s.sealed.erase(it);
  }
  // Best effort: a segment that reappears after a crash is replayed again, idempotently.
  ::fsync(s.dir_fd);
}

uint64_t Spool::BytesOnDisk() const { return impl_->bytes_on_disk.load(); }

uint64_t Spool::PendingRecords() const { return impl_->pending_records.load(); }

}  // namespace bpmc::ingestion
