#include "common/time_format.h"

#include "common/time.h"

// Hand-written on purpose: this runs once per ingested event, and sscanf,
// std::get_time and std::regex are locale-dependent, lenient (sscanf skips
// spaces and accepts signs) and slow.

namespace bpmc {
namespace {

constexpr int64_t kSecondsPerDay = 86'400;

constexpr bool IsLeapYear(unsigned y) { return y % 4 == 0 && (y % 100 != 0 || y % 400 == 0); }

constexpr unsigned DaysInMonth(unsigned y, unsigned m) {
  constexpr unsigned char kDays[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return m == 2 && IsLeapYear(y) ? 29 : kDays[m - 1];
}

inline bool IsDigit(char c) { return c >= '0' && c <= '9'; }

// Reads exactly `n` digits at p[0..n); the caller has checked the length.
inline bool ReadDigits(const char* p, int n, unsigned* out) {
  unsigned v = 0;
  for (int i = 0; i < n; ++i) {
    if (!IsDigit(p[i])) return false;
    v = v * 10 + static_cast<unsigned>(p[i] - '0');
  }
  *out = v;
  return true;
}

}  // namespace

std::optional<int64_t> ParseRfc3339Micros(std::string_view text) {
  // Shortest form: "YYYY-MM-DDTHH:MM:SSZ" (20 characters).
  const size_t n = text.size();
  if (n < 20) return std::nullopt;
  const char* p = text.data();

  unsigned year = 0, month = 0, day = 0, hour = 0, minute = 0, second = 0;
  if (!ReadDigits(p, 4, &year) || p[4] != '-' || !ReadDigits(p + 5, 2, &month) || p[7] != '-' ||
      !ReadDigits(p + 8, 2, &day)) {
    return std::nullopt;
  }
  if (p[10] != 'T' && p[10] != 't' && p[10] != ' ') return std::nullopt;
  if (!ReadDigits(p + 11, 2, &hour) || p[13] != ':' || !ReadDigits(p + 14, 2, &minute) ||
      p[16] != ':' || !ReadDigits(p + 17, 2, &second)) {
    return std::nullopt;
  }
  if (month < 1 || month > 12 || day < 1 || day > DaysInMonth(year, month) || hour > 23 ||
      minute > 59 || second > 60) {
    return std::nullopt;
  }

  size_t i = 19;
  int64_t micros = 0;
  if (p[i] == '.') {
    ++i;
    const size_t start = i;
    while (i < n && IsDigit(p[i])) {
      if (i - start < 6) micros = micros * 10 + (p[i] - '0');
      ++i;
    }
    const size_t digits = i - start;
    if (digits < 1 || digits > 9) return std::nullopt;
    for (size_t k = digits; k < 6; ++k) micros *= 10;
  }
  if (i >= n) return std::nullopt;

  int64_t offset_seconds = 0;
  if (p[i] == 'Z' || p[i] == 'z') {
    ++i;
  } else if (p[i] == '+' || p[i] == '-') {
    unsigned off_h = 0, off_m = 0;
    if (n - i != 6 || !ReadDigits(p + i + 1, 2, &off_h) || p[i + 3] != ':' ||
        !ReadDigits(p + i + 4, 2, &off_m) || off_h > 23 || off_m > 59) {
      return std::nullopt;
    }
    offset_seconds = (static_cast<int64_t>(off_h) * 60 + off_m) * 60;
    if (p[i] == '-') offset_seconds = -offset_seconds;
    i += 6;
  } else {
    return std::nullopt;
  }
  if (i != n) return std::nullopt;

  // A leap second cannot be represented on the POSIX time line; it becomes
  // the last microsecond of the minute, so ordering is preserved.
  if (second == 60) {
    second = 59;
    micros = kMicrosPerSecond - 1;
  }

  const int64_t days = DaysFromCivil(year, month, day);
  const int64_t local_seconds = days * kSecondsPerDay + hour * 3600 + minute * 60 + second;
  return (local_seconds - offset_seconds) * kMicrosPerSecond + micros;
}

std::string FormatRfc3339Micros(int64_t micros) {
  // Floor division, so that instants before the epoch format correctly.
  int64_t seconds = micros / kMicrosPerSecond;
  int64_t frac = micros % kMicrosPerSecond;
  if (frac < 0) {
    frac += kMicrosPerSecond;
    --seconds;
  }
  int64_t days = seconds / kSecondsPerDay;
  int64_t sod = seconds % kSecondsPerDay;
  if (sod < 0) {
    sod += kSecondsPerDay;
    --days;
  }
  const Civil c = CivilFromDays(days);

  // Years outside 0000..9999 (only reachable from out-of-range input) are
  // written with a sign and as many digits as needed rather than clipped.
  char buf[48];
  char* out = buf;
  int64_t year = c.year;
  if (year < 0) {
    *out++ = '-';
    year = -year;
  }
  char ydigits[24];
  int nd = 0;
  do {
    ydigits[nd++] = static_cast<char>('0' + year % 10);
    year /= 10;
  } while (year > 0);
  while (nd < 4) ydigits[nd++] = '0';
  while (nd > 0) *out++ = ydigits[--nd];

  auto put2 = [&out](int64_t v) {
    *out++ = static_cast<char>('0' + v / 10);
    *out++ = static_cast<char>('0' + v % 10);
  };
  *out++ = '-';
  put2(c.month);
  *out++ = '-';
  put2(c.day);
  *out++ = 'T';
  put2(sod / 3600);
  *out++ = ':';
  put2(sod / 60 % 60);
  *out++ = ':';
  put2(sod % 60);
  *out++ = '.';
  for (int64_t div = 100000; div > 0; div /= 10) *out++ = static_cast<char>('0' + frac / div % 10);
  *out++ = 'Z';
  return std::string(buf, static_cast<size_t>(out - buf));
}

}  // namespace bpmc
