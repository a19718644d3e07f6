#include "common/ids.h"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <optional>
#include <ostream>
#include <set>
#include <string>

namespace bpmc {
namespace {

struct UuidCase {
  const char* name;
  std::string input;
  std::optional<std::string> expected;  // nullopt: refused
};

void PrintTo(const UuidCase& c, std::ostream* os) { *os << c.name; }

const UuidCase kUuidCases[] = {
    {"lowercase", "0190a6b2-7d1c-7abc-8def-0123456789ab", "0190a6b2-7d1c-7abc-8def-0123456789ab"},
    {"uppercase", "0190A6B2-7D1C-7ABC-8DEF-0123456789AB", "0190a6b2-7d1c-7abc-8def-0123456789ab"},
    {"mixed_case", "0190a6B2-7d1C-7aBc-8DeF-0123456789aB", "0190a6b2-7d1c-7abc-8def-0123456789ab"},
    {"nil", "00000000-0000-0000-0000-000000000000", "00000000-0000-0000-0000-000000000000"},
    {"max", "ffffffff-ffff-ffff-ffff-ffffffffffff", "ffffffff-ffff-ffff-ffff-ffffffffffff"},
    {"any_version_accepted", "123e4567-e89b-12d3-a456-426614174000",
     "123e4567-e89b-12d3-a456-426614174000"},
    {"empty", "", std::nullopt},
    {"no_dashes", "0190a6b27d1c7abc8def0123456789ab", std::nullopt},
    {"braces", "{0190a6b2-7d1c-7abc-8def-0123456789ab}", std::nullopt},
    {"urn", "urn:uuid:0190a6b2-7d1c-7abc-8def-0123456789ab", std::nullopt},
    {"too_short", "0190a6b2-7d1c-7abc-8def-0123456789a", std::nullopt},
    {"too_long", "0190a6b2-7d1c-7abc-8def-0123456789abc", std::nullopt},
    {"dash_misplaced", "0190a6b27-d1c-7abc-8def-0123456789ab", std::nullopt},
    {"non_hex_g", "0190a6b2-7d1c-7abc-8def-0123456789ag", std::nullopt},
    {"space_inside", "0190a6b2-7d1c-7abc-8def 0123456789ab", std::nullopt},
    {"leading_space", " 0190a6b2-7d1c-7abc-8def-0123456789a", std::nullopt},
    {"nul_inside", std::string("0190a6b2-7d1c-7abc-8def-0123456789\0b", 36), std::nullopt},
    {"all_dashes", "------------------------------------", std::nullopt},
    {"non_ascii", "0190a6b2-7d1c-7abc-8def-0123456789\xc3\xa9", std::nullopt},
};

class CanonicalUuidTest : public ::testing::TestWithParam<UuidCase> {};

TEST_P(CanonicalUuidTest, Canonicalizes) {
  const UuidCase& c = GetParam();
  EXPECT_EQ(CanonicalUuid(c.input), c.expected);
}

INSTANTIATE_TEST_SUITE_P(Table, CanonicalUuidTest, ::testing::ValuesIn(kUuidCases),
                         [](const auto& info) { return std::string(info.param.name); });

int HexNibble(char c) { return c <= '9' ? c - '0' : c - 'a' + 10; }

TEST(UuidV7Test, LayoutVersionAndVariant) {
  const int64_t micros = 1'795'600'800'123'456;  // 2026-11-25T10:00:00.123456Z
  for (int i = 0; i < 200; ++i) {
    const std::string id = NewUuidV7(micros);
    ASSERT_EQ(CanonicalUuid(id), id) << "not canonical: " << id;
    EXPECT_EQ(id.substr(0, 8) + id.substr(9, 4), "01a21225d97b") << id;  // 48-bit ms, big-endian
    EXPECT_EQ(id[14], '7') << id;
    EXPECT_EQ(HexNibble(id[19]) & 0xc, 0x8) << id;  // variant 10xx
  }
}

TEST(UuidV7Test, RandomPartDiffers) {
  std::set<std::string> ids;
  for (int i = 0; i < 1000; ++i) ids.insert(NewUuidV7(1'795'600'800'000'000));
  EXPECT_EQ(ids.size(), 1000u);
}

// Ids take their random bits from a per-thread block: more ids than one
// block holds (4096 / 16 bytes) are still all different.
TEST(UuidV7Test, RandomPartDiffersAcrossBlocks) {
  std::set<std::string> ids;
  for (int i = 0; i < 5000; ++i) ids.insert(NewUuidV7(1'795'600'800'000'000));
  EXPECT_EQ(ids.size(), 5000u);
}

// A forked child must not hand out the ids its parent will: the parent's
// unused random block is not inherited.
TEST(UuidV7Test, ForkedChildDoesNotRepeatTheParentsIds) {
  NewUuidV7(0);  // the block is filled
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    const std::string id = NewUuidV7(0);
    _exit(write(fds[1], id.data(), id.size()) == static_cast<ssize_t>(id.size()) ? 0 : 1);
  }
  close(fds[1]);
  const std::string parent_id = NewUuidV7(0);
  char buf[36];
  ssize_t got = 0;
  while (got < 36) {
    const ssize_t n = read(fds[0], buf + got, sizeof buf - static_cast<size_t>(got));
    if (n <= 0) break;
    got += n;
  }
  close(fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  ASSERT_EQ(got, 36);
  EXPECT_NE(std::string(buf, 36), parent_id);
}

TEST(UuidV7Test, OrderedByMillisecond) {
  std::string previous = NewUuidV7(0);
  EXPECT_EQ(previous.substr(0, 13), "00000000-0000");
  for (int64_t ms :
       {1LL, 2LL, 1000LL, 1'795'600'800'000LL, 1'795'600'800'001LL, 281'474'976'710'655LL}) {
    const std::string id = NewUuidV7(ms * 1000);
    EXPECT_LT(previous, id) << ms;
    previous = id;
  }
}

TEST(UuidV7Test, NegativeTimeClampsToZero) {
  EXPECT_EQ(NewUuidV7(-5'000'000).substr(0, 13), "00000000-0000");
}

TEST(RandomBytesTest, LengthAndVariety) {
  EXPECT_EQ(RandomBytes(0), "");
  EXPECT_EQ(RandomBytes(32).size(), 32u);
  EXPECT_NE(RandomBytes(32), RandomBytes(32));
}

struct HexCase {
  const char* name;
  std::string input;
  const char* expected;
};

const HexCase kHexCases[] = {
    {"empty", "", ""},
    {"ascii", "abc", "616263"},
    {"high_bytes", std::string("\x00\x7f\x80\xff", 4), "007f80ff"},
};

TEST(HexEncodeTest, Table) {
  for (const HexCase& c : kHexCases) {
    EXPECT_EQ(HexEncode(c.input), c.expected) << c.name;
  }
}

struct DigestCase {
  const char* name;
  std::string key;  // unused for SHA-256
  std::string data;
  const char* expected_hex;
};

TEST(Sha256Test, KnownVectors) {
  const DigestCase cases[] = {
      // FIPS 180-2 appendix B.1.
      {"abc", "", "abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
      {"empty", "", "", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
      {"two_blocks", "", "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
       "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"},
  };
  for (const DigestCase& c : cases) {
    const std::string digest = Sha256(c.data);
    EXPECT_EQ(digest.size(), 32u) << c.name;
    EXPECT_EQ(HexEncode(digest), c.expected_hex) << c.name;
  }
}

TEST(HmacSha256Test, Rfc4231) {
  const DigestCase cases[] = {
      // RFC 4231 test case 2.
      {"tc2", "Jefe", "what do ya want for nothing?",
       "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"},
      // RFC 4231 test case 1.
      {"tc1", std::string(20, '\x0b'), "Hi There",
       "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"},
      // RFC 4231 test case 6: a key longer than the block size is hashed first.
      {"tc6", std::string(131, '\xaa'), "Test Using Larger Than Block-Size Key - Hash Key First",
       "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"},
  };
  for (const DigestCase& c : cases) {
    const std::string mac = HmacSha256(c.key, c.data);
    EXPECT_EQ(mac.size(), 32u) << c.name;
    EXPECT_EQ(HexEncode(mac), c.expected_hex) << c.name;
  }
  EXPECT_EQ(HmacSha256("", "").size(), 32u);
}

// RFC 4648 section 10 vectors, without padding, plus the two url-safe digits.
TEST(Base64UrlEncodeTest, Rfc4648Vectors) {
  const std::pair<std::string, std::string> cases[] = {
      {"", ""},           {"f", "Zg"},          {"fo", "Zm8"},          {"foo", "Zm9v"},
      {"foob", "Zm9vYg"}, {"fooba", "Zm9vYmE"}, {"foobar", "Zm9vYmFy"}, {"\xfb\xff", "-_8"},
  };
  for (const auto& [in, out] : cases) EXPECT_EQ(Base64UrlEncode(in), out) << out;
  EXPECT_EQ(Base64UrlEncode(std::string(32, '\0')).size(), 43u);
}

TEST(ConstantTimeEqualsTest, Table) {
  EXPECT_TRUE(ConstantTimeEquals("", ""));
  EXPECT_TRUE(ConstantTimeEquals("s3cret", "s3cret"));
  EXPECT_FALSE(ConstantTimeEquals("s3cret", "s3creT"));
  EXPECT_FALSE(ConstantTimeEquals("s3cret", "s3cret "));  // lengths differ
  EXPECT_FALSE(ConstantTimeEquals("s3cret", ""));
  EXPECT_FALSE(ConstantTimeEquals(std::string("a\0b", 3), std::string("a\0c", 3)));
}

}  // namespace
}  // namespace bpmc
