#include "ingestion/spool.h"

#include <dirent.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "common/testing/temp_dir.h"

namespace bpmc::ingestion {
namespace {

using bpmc::testing::TempDir;
using Result = Spool::AppendResult;
constexpr uint64_t kLots = uint64_t{1} << 30;

std::string SegmentName(uint64_t seq) {
  char name[64];
  std::snprintf(name, sizeof(name), "spool-%020llu.log", static_cast<unsigned long long>(seq));
  return name;
}

// Segment file names in the directory, sorted.
std::vector<std::string> Segments(const std::string& dir) {
  std::vector<std::string> out;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    const std::string name = e.path().filename().string();
    if (name.rfind("spool-", 0) == 0 && name.size() == 30) out.push_back(name);
  }
  std::sort(out.begin(), out.end());
  return out;
}

uint64_t SegmentBytes(const std::string& dir) {
  uint64_t total = 0;
  for (const auto& name : Segments(dir)) total += std::filesystem::file_size(dir + "/" + name);
  return total;
}

std::string ReadBytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

void WriteBytes(const std::string& path, const std::string& data) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(data.data(), static_cast<std::streamsize>(data.size()));
}

std::unique_ptr<Spool> OpenOrDie(const std::string& dir, uint64_t max_bytes = kLots,
                                 uint64_t segment_bytes = Spool::kDefaultSegmentBytes) {
  std::string error;
  auto spool = Spool::Open(dir, max_bytes, &error, segment_bytes);
  EXPECT_NE(spool, nullptr) << error;
  return spool;
}

// Seals, then reads and releases every segment; returns (seq, records) in order.
std::vector<Spool::Segment> Drain(Spool& spool) {
  spool.Seal();
  std::vector<Spool::Segment> out;
  while (auto seg = spool.OldestSealed()) {
    out.push_back(*seg);
    spool.Release(seg->seq);
  }
  return out;
}

std::vector<std::string> Flatten(const std::vector<Spool::Segment>& segments) {
  std::vector<std::string> out;
  for (const auto& s : segments) out.insert(out.end(), s.records.begin(), s.records.end());
  return out;
}

std::string Record(uint64_t id, size_t size = 40) {
  std::string r = "rec-" + std::to_string(id) + "-";
  while (r.size() < size) r.push_back(static_cast<char>('a' + (r.size() + id) % 26));
  return r;
}

std::string Le32(uint32_t v) {
  std::string s(4, '\0');
  for (int i = 0; i < 4; ++i) s[i] = static_cast<char>((v >> (8 * i)) & 0xFFu);
  return s;
}

TEST(SpoolTest, WritesTheDocumentedFrameFormat) {
  TempDir dir("bpmc-spool");
  auto spool = OpenOrDie(dir.path());
  // CRC-32C check value ("123456789") and the RFC 3720 vector for 32 zero bytes.
  const std::string zeros(32, '\0');
  ASSERT_EQ(spool->Append({"123456789", zeros}), Result::kOk);
  spool.reset();
  ASSERT_EQ(Segments(dir.path()), std::vector<std::string>{SegmentName(1)});
  const std::string expected =
      Le32(9) + Le32(0xE3069283u) + "123456789" + Le32(32) + Le32(0x8A9136AAu) + zeros;
  EXPECT_EQ(ReadBytes(dir.path() + "/" + SegmentName(1)), expected);
}

TEST(SpoolTest, ReadsAHandWrittenSegmentAndContinuesAfterItsSeq) {
  TempDir dir("bpmc-spool");
  std::string ascending;
  for (int i = 0; i < 32; ++i) ascending.push_back(static_cast<char>(i));
  WriteBytes(dir.path() + "/" + SegmentName(7),
             Le32(9) + Le32(0xE3069283u) + "123456789" + Le32(32) + Le32(0x46DD794Eu) + ascending);
  auto spool = OpenOrDie(dir.path());
  EXPECT_EQ(spool->PendingRecords(), 2u);
  EXPECT_EQ(spool->BytesOnDisk(), 8u + 9u + 8u + 32u);
  ASSERT_EQ(spool->Append({"next"}), Result::kOk);
  EXPECT_EQ(Segments(dir.path()), (std::vector<std::string>{SegmentName(7), SegmentName(8)}));
  auto segments = Drain(*spool);
  ASSERT_EQ(segments.size(), 2u);
  EXPECT_EQ(segments[0].seq, 7u);
  EXPECT_EQ(segments[0].records, (std::vector<std::string>{"123456789", ascending}));
  EXPECT_EQ(segments[1].seq, 8u);
  EXPECT_EQ(segments[1].records, std::vector<std::string>{"next"});
}

TEST(SpoolTest, AppendSealReadInOrderAcrossSegments) {
  TempDir dir("bpmc-spool");
  auto spool = OpenOrDie(dir.path());
  EXPECT_FALSE(spool->OldestSealed().has_value());
  spool->Seal();  // no active segment: no-op
  EXPECT_TRUE(Segments(dir.path()).empty());
  EXPECT_EQ(spool->Append({}), Result::kOk);
  EXPECT_TRUE(Segments(dir.path()).empty());

  std::vector<std::string> all;
  uint64_t id = 0;
  for (int seg = 0; seg < 4; ++seg) {
    for (int batch = 0; batch < 3; ++batch) {
      std::vector<std::string> records;
      for (int i = 0; i <= batch; ++i) records.push_back(Record(id++));
      ASSERT_EQ(spool->Append(records), Result::kOk);
      all.insert(all.end(), records.begin(), records.end());
    }
    // The active segment is not replayable until sealed.
    if (seg == 0) EXPECT_FALSE(spool->OldestSealed().has_value());
    spool->Seal();
    spool->Seal();  // idempotent
  }
  EXPECT_EQ(Segments(dir.path()).size(), 4u);
  EXPECT_EQ(spool->PendingRecords(), all.size());
  EXPECT_EQ(spool->BytesOnDisk(), SegmentBytes(dir.path()));

  // The same segment comes back until it is released.
  auto first = spool->OldestSealed();
  auto again = spool->OldestSealed();
  ASSERT_TRUE(first && again);
  EXPECT_EQ(first->seq, 1u);
  EXPECT_EQ(again->seq, 1u);
  EXPECT_EQ(first->records, again->records);

  auto segments = Drain(*spool);
  ASSERT_EQ(segments.size(), 4u);
  for (size_t i = 0; i < segments.size(); ++i) EXPECT_EQ(segments[i].seq, i + 1);
  EXPECT_EQ(Flatten(segments), all);
  EXPECT_EQ(spool->PendingRecords(), 0u);
  EXPECT_EQ(spool->BytesOnDisk(), 0u);
  EXPECT_TRUE(Segments(dir.path()).empty());
}

TEST(SpoolTest, ReopenAfterCrashKeepsAllRecords) {
  TempDir dir("bpmc-spool");
  std::vector<std::string> all;
  {
    auto spool = OpenOrDie(dir.path(), kLots, /*segment_bytes=*/500);
    for (uint64_t id = 0; id < 50; ++id) {
      ASSERT_EQ(spool->Append({Record(id)}), Result::kOk);
      all.push_back(Record(id));
    }
    // Destroyed without Seal, as after kill -9.
  }
  const auto before = Segments(dir.path());
  ASSERT_GT(before.size(), 1u);
  auto spool = OpenOrDie(dir.path(), kLots, 500);
  EXPECT_EQ(spool->PendingRecords(), all.size());
  EXPECT_EQ(spool->BytesOnDisk(), SegmentBytes(dir.path()));
  // Every old segment is sealed; new records go to a new one.
  ASSERT_EQ(spool->Append({"after"}), Result::kOk);
  all.push_back("after");
  const auto after = Segments(dir.path());
  ASSERT_EQ(after.size(), before.size() + 1);
  EXPECT_EQ(after.back(), SegmentName(before.size() + 1));
  EXPECT_EQ(Flatten(Drain(*spool)), all);
}

TEST(SpoolTest, TornTailDropsOnlyTheLastRecord) {
  TempDir dir("bpmc-spool");
  const std::vector<std::string> records = {Record(1), Record(2, 100), Record(3, 70)};
  {
    auto spool = OpenOrDie(dir.path());
    ASSERT_EQ(spool->Append({records[0], records[1]}), Result::kOk);
    ASSERT_EQ(spool->Append({records[2]}), Result::kOk);
  }
  const std::string path = dir.path() + "/" + SegmentName(1);
  const std::string original = ReadBytes(path);
  const size_t last_frame = 8 + records[2].size();
  ASSERT_EQ(original.size(), 16 + records[0].size() + records[1].size() + last_frame);
  for (size_t cut = 1; cut <= last_frame; ++cut) {
    SCOPED_TRACE("cut " + std::to_string(cut));
    WriteBytes(path, original.substr(0, original.size() - cut));
    auto spool = OpenOrDie(dir.path());
    EXPECT_EQ(spool->PendingRecords(), 2u);
    EXPECT_EQ(spool->BytesOnDisk(), original.size() - cut);
    auto seg = spool->OldestSealed();
    ASSERT_TRUE(seg);
    EXPECT_EQ(seg->records, (std::vector<std::string>{records[0], records[1]}));
    // The torn segment is never appended to again.
    ASSERT_EQ(spool->Append({"x"}), Result::kOk);
    spool.reset();
    EXPECT_EQ(ReadBytes(path).size(), original.size() - cut);
    std::filesystem::remove(dir.path() + "/" + SegmentName(2));
  }
}

TEST(SpoolTest, CorruptFrameStopsReadingThere) {
  TempDir dir("bpmc-spool");
  const std::vector<std::string> records = {Record(1), Record(2), Record(3)};
  {
    auto spool = OpenOrDie(dir.path());
    ASSERT_EQ(spool->Append(records), Result::kOk);
  }
  const std::string path = dir.path() + "/" + SegmentName(1);
  const std::string original = ReadBytes(path);
  const size_t start = 8 + records[0].size();
  // Every byte of the second frame, header and payload.
  for (size_t pos = start; pos < start + 8 + records[1].size(); ++pos) {
    SCOPED_TRACE("byte " + std::to_string(pos));
    std::string bad = original;
    bad[pos] = static_cast<char>(bad[pos] ^ 0x01);
    WriteBytes(path, bad);
    auto spool = OpenOrDie(dir.path());
    EXPECT_EQ(spool->PendingRecords(), 1u);
    auto seg = spool->OldestSealed();
    ASSERT_TRUE(seg);
    EXPECT_EQ(seg->records, std::vector<std::string>{records[0]});
  }
}

TEST(SpoolTest, ZeroFilledOrOversizedTailIsIgnored) {
  TempDir dir("bpmc-spool");
  {
    auto spool = OpenOrDie(dir.path());
    ASSERT_EQ(spool->Append({Record(1)}), Result::kOk);
  }
  const std::string path = dir.path() + "/" + SegmentName(1);
  const std::string original = ReadBytes(path);
  for (const std::string& tail :
       {std::string(4096, '\0'), Le32(Spool::kMaxRecordBytes + 1) + Le32(0) + "abc",
        std::string("\x05\x00\x00", 3)}) {
    WriteBytes(path, original + tail);
    auto spool = OpenOrDie(dir.path());
    EXPECT_EQ(spool->PendingRecords(), 1u);
    EXPECT_EQ(spool->BytesOnDisk(), original.size() + tail.size());
    auto seg = spool->OldestSealed();
    ASSERT_TRUE(seg);
    EXPECT_EQ(seg->records, std::vector<std::string>{Record(1)});
  }
}

TEST(SpoolTest, FullLeavesNothingWritten) {
  TempDir dir("bpmc-spool");
  // Two 40-byte records fit in 100 bytes (48 each with header); a third does not.
  auto spool = OpenOrDie(dir.path(), /*max_bytes=*/100);
  EXPECT_EQ(spool->max_bytes(), 100u);
  ASSERT_EQ(spool->Append({Record(1)}), Result::kOk);
  spool->Seal();
  EXPECT_EQ(spool->Append({Record(2), Record(3)}), Result::kFull);
  // No new segment was created for the refused batch.
  EXPECT_EQ(Segments(dir.path()), std::vector<std::string>{SegmentName(1)});
  EXPECT_EQ(spool->BytesOnDisk(), 48u);
  EXPECT_EQ(spool->PendingRecords(), 1u);
  ASSERT_EQ(spool->Append({Record(2)}), Result::kOk);  // exactly at the limit
  EXPECT_EQ(spool->BytesOnDisk(), 96u);
  EXPECT_EQ(spool->Append({"x"}), Result::kFull);
  EXPECT_EQ(spool->BytesOnDisk(), 96u);
  EXPECT_EQ(spool->PendingRecords(), 2u);
  EXPECT_EQ(SegmentBytes(dir.path()), 96u);
  // Releasing makes room again.
  spool->Release(1);
  EXPECT_EQ(spool->Append({"x"}), Result::kOk);
  EXPECT_EQ(Flatten(Drain(*spool)), (std::vector<std::string>{Record(2), "x"}));
}

TEST(SpoolTest, RecordsThatCanNeverBeStoredAreRefused) {
  TempDir dir("bpmc-spool");
  auto spool = OpenOrDie(dir.path());
  EXPECT_EQ(spool->Append({"a", ""}), Result::kFull);
  EXPECT_EQ(spool->Append({std::string(Spool::kMaxRecordBytes + 1, 'x')}), Result::kFull);
  EXPECT_TRUE(Segments(dir.path()).empty());
  EXPECT_EQ(spool->PendingRecords(), 0u);
}

TEST(SpoolTest, ReleaseDeletesTheFileAndUpdatesAccounting) {
  TempDir dir("bpmc-spool");
  auto spool = OpenOrDie(dir.path());
  ASSERT_EQ(spool->Append({Record(1), Record(2)}), Result::kOk);
  spool->Seal();
  ASSERT_EQ(spool->Append({Record(3, 100)}), Result::kOk);  // active segment 2
  EXPECT_EQ(spool->PendingRecords(), 3u);
  EXPECT_EQ(spool->BytesOnDisk(), 96u + 108u);

  spool->Release(2);   // active: no-op
  spool->Release(99);  // unknown: no-op
  EXPECT_EQ(Segments(dir.path()).size(), 2u);
  EXPECT_EQ(spool->PendingRecords(), 3u);

  spool->Release(1);
  EXPECT_EQ(Segments(dir.path()), std::vector<std::string>{SegmentName(2)});
  EXPECT_EQ(spool->PendingRecords(), 1u);
  EXPECT_EQ(spool->BytesOnDisk(), 108u);
  spool->Release(1);  // twice: no-op
  EXPECT_EQ(spool->PendingRecords(), 1u);
  EXPECT_FALSE(spool->OldestSealed().has_value());

  spool->Seal();
  spool->Release(2);
  EXPECT_TRUE(Segments(dir.path()).empty());
  EXPECT_EQ(spool->PendingRecords(), 0u);
  EXPECT_EQ(spool->BytesOnDisk(), 0u);
}

TEST(SpoolTest, RotatesWhenTheSegmentReachesItsSize) {
  TempDir dir("bpmc-spool");
  auto spool = OpenOrDie(dir.path(), kLots, /*segment_bytes=*/1000);
  // 100-byte frames: the 10th append brings a segment to 1000 bytes and seals it.
  for (uint64_t id = 0; id < 25; ++id) ASSERT_EQ(spool->Append({Record(id, 92)}), Result::kOk);
  EXPECT_EQ(Segments(dir.path()).size(), 3u);
  auto first = spool->OldestSealed();
  ASSERT_TRUE(first);
  EXPECT_EQ(first->seq, 1u);
  EXPECT_EQ(first->records.size(), 10u);
  spool->Release(1);
  auto second = spool->OldestSealed();
  ASSERT_TRUE(second);
  EXPECT_EQ(second->seq, 2u);
  EXPECT_EQ(second->records.front(), Record(10, 92));
  spool->Release(2);
  EXPECT_FALSE(spool->OldestSealed().has_value());  // segment 3 (5 records) is still active
  EXPECT_EQ(spool->PendingRecords(), 5u);

  // A batch larger than the segment size goes into one segment, which then rotates.
  std::vector<std::string> big;
  for (uint64_t id = 100; id < 120; ++id) big.push_back(Record(id, 92));
  ASSERT_EQ(spool->Append(big), Result::kOk);
  auto third = spool->OldestSealed();
  ASSERT_TRUE(third);
  EXPECT_EQ(third->seq, 3u);
  EXPECT_EQ(third->records.size(), 25u);
  EXPECT_EQ(std::filesystem::file_size(dir.path() + "/" + SegmentName(3)), 2500u);
}

TEST(SpoolTest, ConcurrentAppendsComeBackExactlyOnce) {
  TempDir dir("bpmc-spool");
  auto spool = OpenOrDie(dir.path(), kLots, /*segment_bytes=*/2048);
  constexpr int kThreads = 8;
  constexpr int kBatches = 40;
  constexpr int kPerBatch = 4;
  std::atomic<int> writers_left{kThreads};
  std::atomic<bool> done{false};
  std::atomic<int> failures{0};
  std::vector<std::string> replayed;
  // A replayer drains concurrently with the writers.
  std::thread replayer([&] {
    for (;;) {
      const bool last_pass = done.load();
      auto seg = spool->OldestSealed();
      if (seg) {
        replayed.insert(replayed.end(), seg->records.begin(), seg->records.end());
        spool->Release(seg->seq);
      } else if (last_pass) {
        return;
      } else {
        std::this_thread::yield();
      }
    }
  });
  std::vector<std::thread> writers;
  for (int t = 0; t < kThreads; ++t) {
    writers.emplace_back([&, t] {
      for (int b = 0; b < kBatches; ++b) {
        std::vector<std::string> batch;
        for (int i = 0; i < kPerBatch; ++i) {
          batch.push_back(std::to_string(t) + ":" + std::to_string(b * kPerBatch + i));
        }
        if (spool->Append(batch) != Result::kOk) ++failures;
      }
      // Seal while other writers may still be appending.
      if (--writers_left == kThreads / 2) spool->Seal();
    });
  }
  for (auto& w : writers) w.join();
  spool->Seal();
  done = true;
  replayer.join();
  EXPECT_TRUE(Drain(*spool).empty());

  EXPECT_EQ(failures.load(), 0);
  ASSERT_EQ(replayed.size(), size_t{kThreads * kBatches * kPerBatch});
  // Exactly once, and in each writer's own order.
  std::map<int, int> next;
  for (const auto& rec : replayed) {
    const size_t colon = rec.find(':');
    const int t = std::stoi(rec.substr(0, colon));
    const int n = std::stoi(rec.substr(colon + 1));
    EXPECT_EQ(n, next[t]) << rec;
    next[t] = n + 1;
  }
  EXPECT_EQ(spool->PendingRecords(), 0u);
  EXPECT_EQ(spool->BytesOnDisk(), 0u);
}

TEST(SpoolTest, OneSpoolPerDirectory) {
  TempDir dir("bpmc-spool");
  auto spool = OpenOrDie(dir.path());
  std::string error;
  EXPECT_EQ(Spool::Open(dir.path(), kLots, &error), nullptr);
  EXPECT_NE(error.find("in use"), std::string::npos) << error;
  spool.reset();
  EXPECT_NE(Spool::Open(dir.path(), kLots, &error), nullptr) << error;
}

TEST(SpoolTest, CreatesMissingDirectoriesAndIgnoresOtherFiles) {
  TempDir dir("bpmc-spool");
  const std::string nested = dir.path() + "/a/b/spool/";
  {
    auto spool = OpenOrDie(nested);
    ASSERT_EQ(spool->Append({"one"}), Result::kOk);
  }
  for (const char* name :
       {"README", "spool-1.log", "spool-0000000000000000000x.log",
        "spool-00000000000000000005.log.tmp", "spool-99999999999999999999.log"}) {
    WriteBytes(nested + name, "junk");
  }
  auto spool = OpenOrDie(nested);
  EXPECT_EQ(spool->PendingRecords(), 1u);
  EXPECT_EQ(spool->BytesOnDisk(), 11u);
  EXPECT_EQ(Flatten(Drain(*spool)), std::vector<std::string>{"one"});
  EXPECT_TRUE(std::filesystem::exists(nested + "README"));

  std::string error;
  WriteBytes(dir.path() + "/file", "x");
  EXPECT_EQ(Spool::Open(dir.path() + "/file", kLots, &error), nullptr);
  EXPECT_FALSE(error.empty());
  EXPECT_EQ(Spool::Open("", kLots, &error), nullptr);
}

// Runs `body` in a forked child; returns its exit status (0 = all checks passed).
template <typename F>
int RunInChild(F body) {
  std::fflush(nullptr);
  const pid_t pid = ::fork();
  if (pid == 0) ::_exit(body());
  int status = 0;
  ::waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

#define CHILD_CHECK(cond)                                                                   \
  do {                                                                                      \
    if (!(cond)) {                                                                          \
      std::fprintf(stderr, "child check failed at %s:%d: %s\n", __FILE__, __LINE__, #cond); \
      return 1;                                                                             \
    }                                                                                       \
  } while (0)

TEST(SpoolTest, FailedWriteIsCutBackAndTheNextAppendStartsANewSegment) {
  TempDir dir("bpmc-spool");
  const std::string d = dir.path();
  // RLIMIT_FSIZE makes write() fail part-way (EFBIG) without touching this process.
  const int status = RunInChild([&]() -> int {
    ::signal(SIGXFSZ, SIG_IGN);
    rlimit limit{};
    CHILD_CHECK(::getrlimit(RLIMIT_FSIZE, &limit) == 0);
    auto set_soft = [&](rlim_t soft) {
      rlimit l = limit;
      l.rlim_cur = soft;
      return ::setrlimit(RLIMIT_FSIZE, &l) == 0;
    };
    std::string error;
    auto spool = Spool::Open(d, kLots, &error);
    CHILD_CHECK(spool != nullptr);
    CHILD_CHECK(spool->Append({std::string(100, 'a')}) == Result::kOk);

    // A partial write is truncated away; the acknowledged record stays.
    CHILD_CHECK(set_soft(200));
    CHILD_CHECK(spool->Append({std::string(100, 'b')}) == Result::kIoError);
    CHILD_CHECK(std::filesystem::file_size(d + "/" + SegmentName(1)) == 108);
    CHILD_CHECK(spool->BytesOnDisk() == 108 && spool->PendingRecords() == 1);
    // The failed segment is sealed: replayable now.
    auto seg = spool->OldestSealed();
    CHILD_CHECK(seg && seg->seq == 1 && seg->records.size() == 1);

    // A failure in a brand-new segment leaves no file behind.
    CHILD_CHECK(set_soft(50));
    CHILD_CHECK(spool->Append({std::string(100, 'c')}) == Result::kIoError);
    CHILD_CHECK(Segments(d) == std::vector<std::string>{SegmentName(1)});
    CHILD_CHECK(spool->BytesOnDisk() == 108 && spool->PendingRecords() == 1);

    CHILD_CHECK(set_soft(limit.rlim_max));
    CHILD_CHECK(spool->Append({std::string(100, 'd')}) == Result::kOk);
    CHILD_CHECK(Segments(d).size() == 2 && Segments(d).back() == SegmentName(3));
    const auto all = Flatten(Drain(*spool));
    CHILD_CHECK(all == (std::vector<std::string>{std::string(100, 'a'), std::string(100, 'd')}));
    CHILD_CHECK(spool->BytesOnDisk() == 0 && spool->PendingRecords() == 0);
    return 0;
  });
  EXPECT_EQ(status, 0);
}

// A child appends batches in a loop and reports each acknowledged record id on a
// pipe; the parent SIGKILLs it at a random point, reopens the spool and checks
// that every acknowledged id is there. Several rounds pile up segments from
// several crashes before the final drain.
TEST(SpoolTest, SigkillNeverLosesAcknowledgedRecords) {
  TempDir dir("bpmc-spool");
  const uint64_t seed = std::random_device{}();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937_64 rng(seed);
  std::set<uint64_t> acked;
  constexpr int kRounds = 5;
  for (int round = 0; round < kRounds; ++round) {
    int fds[2];
    ASSERT_EQ(::pipe2(fds, O_CLOEXEC), 0);
    const uint64_t child_seed = rng();
    std::fflush(nullptr);
    const pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      ::close(fds[0]);
      std::string error;
      auto spool = Spool::Open(dir.path(), kLots, &error, /*segment_bytes=*/8192);
      if (spool == nullptr) ::_exit(2);
      std::mt19937_64 child_rng(child_seed);
      uint64_t id = static_cast<uint64_t>(round) * 1000000000u;
      for (;;) {
        std::vector<uint64_t> ids(1 + child_rng() % 16);
        std::vector<std::string> batch;
        for (auto& i : ids) {
          i = id++;
          batch.push_back(Record(i, 20 + child_rng() % 400));
        }
        if (spool->Append(batch) != Result::kOk) ::_exit(3);
        std::string line;
        for (uint64_t i : ids) line += std::to_string(i) + "\n";
        if (::write(fds[1], line.data(), line.size()) < 0) ::_exit(4);
      }
    }
    ::close(fds[1]);
    const size_t target = 1 + rng() % 600;
    size_t seen = 0;
    std::string pending;
    char buf[4096];
    bool killed = false;
    for (;;) {
      const ssize_t n = ::read(fds[0], buf, sizeof(buf));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;  // EOF: the child is gone
      pending.append(buf, static_cast<size_t>(n));
      size_t nl;
      while ((nl = pending.find('\n')) != std::string::npos) {
        acked.insert(std::stoull(pending.substr(0, nl)));
        pending.erase(0, nl + 1);
        ++seen;
      }
      if (!killed && seen >= target) {
        // Spin a little so the kill lands anywhere in the child's loop.
        for (volatile uint64_t spin = rng() % 200000; spin > 0; spin = spin - 1) {
        }
        ::kill(pid, SIGKILL);
        killed = true;
      }
    }
    ::close(fds[0]);
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << "status " << status;

    auto spool = OpenOrDie(dir.path());
    ASSERT_NE(spool, nullptr);
    EXPECT_EQ(spool->BytesOnDisk(), SegmentBytes(dir.path()));
    // At most the one batch in flight may be there without having been reported.
    EXPECT_GE(spool->PendingRecords(), acked.size());
    EXPECT_LE(spool->PendingRecords(), acked.size() + 16 * (round + 1));
    if (round + 1 < kRounds) continue;

    std::set<uint64_t> found;
    for (const auto& rec : Flatten(Drain(*spool))) {
      const size_t dash = rec.find('-', 4);
      ASSERT_NE(dash, std::string::npos) << rec;
      const uint64_t id = std::stoull(rec.substr(4, dash - 4));
      EXPECT_EQ(rec, Record(id, rec.size()));
      EXPECT_TRUE(found.insert(id).second) << "duplicate " << id;
    }
    for (uint64_t id : acked) EXPECT_EQ(found.count(id), 1u) << "lost acknowledged record " << id;
  }
}

}  // namespace
}  // namespace bpmc::ingestion
