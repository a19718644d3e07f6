// Validation rules for POST /v1/connector/usage and /v1/connector/usage/batch.
//
// Body
//   - ParseUsageEvent: a JSON object. ParseUsageBatch: a JSON array of objects,
//     1..options.max_batch_events items (0 -> 400, more -> 413, field "").
//   - Malformed JSON, invalid UTF-8 (raw bytes or lone \ud800 escapes),
//     numbers out of double/int64/uint64 range, nesting deeper than 1024
//     -> 400, field "".
//   - Unknown keys are ignored. A known key that appears twice -> 400
//     "duplicate key", field = the key (JSON escapes in keys are decoded first).
//   - `null` for any key means the key is absent.
// Required
//   connector        string, 1..50 characters
//   operation        string, 1..100 characters
//   make_account_id  string 1..100 characters, or a JSON integer (any int64 or
//                    uint64, sign kept) stored as its decimal string; 12.0 and
//                    1e3 are not integers and are refused
//   timestamp        string, RFC 3339 (ParseRfc3339Micros);
//                    > now_us + max_future_us -> "timestamp is more than 24h in
//                    the future" (the span follows max_future_us);
//                    < min_timestamp_us -> "timestamp is older than the
//                    retention window"; both boundaries themselves are accepted
// Optional
//   event_id         UUID 8-4-4-4-12 hex, either case -> canonical lowercase id
//   status           "success" | "error" (exact, case-sensitive); default success
//   error_type       string, <= 100 characters
//   error_message    string, <= 4096 characters
//   duration_ms      JSON number, 0 <= x <= kMaxDurationMs (-0 becomes 0)
// Strings
//   - "characters" are Unicode code points, as PostgreSQL VARCHAR(n) counts them.
//   - A string containing U+0000 is refused (PostgreSQL text cannot store it).
//   - An empty string is refused for a required key and means absent for an
//     optional one (including event_id and status).
// Errors
//   - 400 with a message naming the key ("connector is required", "connector
//     must be a string", "operation is longer than 100 characters") and the key
//     as `field`. In a batch the field is prefixed with the item's index:
//     "[3].timestamp"; an item that is not an object has field "[3]".
//   - Duplicates are found before any value is checked; then keys are checked
//     in the order listed above. A batch stops at its first bad item (all or
//     nothing).
//   - Never throws: an allocation failure becomes a 413.

#include <charconv>
#include <cstring>
#include <exception>
#include <memory>
#include <new>
#include <string>
#include <utility>

#include "common/ids.h"
#include "common/time_format.h"
#include "http/json_body.h"
#include "ingestion/event.h"
#include "simdjson.h"

namespace bpmc::ingestion {
namespace {

namespace dom = simdjson::dom;

// Buffers above this size are released after a request, so one large batch
// does not pin memory in every worker thread for the life of the process.
constexpr size_t kRetainBytes = 1 << 20;

static_assert(kMaxDurationMs == 86'400'000.0, "update the duration_ms message");

enum Key : int {
  kConnector,
  kOperation,
  kAccount,
  kTimestamp,
  kEventId,
  kStatus,
  kErrorType,
  kErrorMessage,
  kDuration,
  kKeyCount,
};

constexpr std::string_view kKeyNames[kKeyCount] = {
    "connector", "operation",  "make_account_id", "timestamp",   "event_id",
    "status",    "error_type", "error_message",   "duration_ms",
};

inline int KeyOf(std::string_view k) {
  switch (k.size()) {
    case 6:
      return k == "status" ? kStatus : -1;
    case 8:
      return k == "event_id" ? kEventId : -1;
    case 9:
      if (k == "connector") return kConnector;
      if (k == "operation") return kOperation;
      if (k == "timestamp") return kTimestamp;
      return -1;
    case 10:
      return k == "error_type" ? kErrorType : -1;
    case 11:
      return k == "duration_ms" ? kDuration : -1;
    case 13:
      return k == "error_message" ? kErrorMessage : -1;
    case 15:
      return k == "make_account_id" ? kAccount : -1;
    default:
      return -1;
  }
}

// An error before the batch index is attached. `key` < 0 means the whole item.
struct Failure {
  int http_status = 400;
  std::string message;
  int key = -1;
};

Failure Fail(int key, std::string_view what) {
  Failure f;
  f.key = key;
  f.message.reserve(kKeyNames[key].size() + what.size());
  f.message.append(kKeyNames[key]).append(what);
  return f;
}

RequestError BodyError(int http_status, std::string message) {
  return RequestError{http_status, std::move(message), std::string()};
}

// `index` < 0 for a single event.
RequestError ToRequestError(Failure f, int64_t index) {
  std::string field;
  if (index >= 0) {
    field.push_back('[');
    field.append(std::to_string(index));
    field.push_back(']');
    if (f.key >= 0) field.push_back('.');
  }
  if (f.key >= 0) field.append(kKeyNames[f.key]);
  return RequestError{f.http_status, std::move(f.message), std::move(field)};
}

// Unicode code points in valid UTF-8 (simdjson has validated the whole body).
inline size_t CountChars(std::string_view s) {
  size_t n = 0;
  for (const char c : s) n += (static_cast<unsigned char>(c) & 0xc0) != 0x80;
  return n;
}

// "24h", "90m", "30s" or "1500us": how far ahead a timestamp may be.
std::string FormatSpan(int64_t us) {
  if (us != 0 && us % (3600LL * 1000000) == 0) return std::to_string(us / (3600LL * 1000000)) + "h";
  if (us != 0 && us % (60LL * 1000000) == 0) return std::to_string(us / (60LL * 1000000)) + "m";
  if (us % 1000000 == 0) return std::to_string(us / 1000000) + "s";
  return std::to_string(us) + "us";
}

// A string value of `key`. *out is empty (and true returned) when the value is
// null or "". `max_chars` counts code points.
bool GetString(dom::element v, int key, size_t max_chars, std::string_view* out, Failure* f) {
  *out = {};
  if (v.is_null()) return true;
  if (v.get_string().get(*out) != simdjson::SUCCESS) {
    *f = Fail(key, " must be a string");
    return false;
  }
  if (std::memchr(out->data(), 0, out->size()) != nullptr) {
    *f = Fail(key, " must not contain U+0000");
    return false;
  }
  // Bytes bound characters from above: count only when it can matter.
  if (out->size() > max_chars && CountChars(*out) > max_chars) {
    *f = Fail(key, " is longer than " + std::to_string(max_chars) + " characters");
    return false;
  }
  return true;
}

bool GetRequiredString(const dom::element* v, int key, size_t max_chars, std::string* out,
                       Failure* f) {
  if (v == nullptr || v->is_null()) {
    *f = Fail(key, " is required");
    return false;
  }
  std::string_view s;
  if (!GetString(*v, key, max_chars, &s, f)) return false;
  if (s.empty()) {
    *f = Fail(key, " must not be empty");
    return false;
  }
  out->assign(s.data(), s.size());
  return true;
}

// make_account_id: a string, or an integer kept as its decimal form.
bool ParseAccount(const dom::element* v, std::string* out, Failure* f) {
  int64_t i = 0;
  uint64_t u = 0;
  char digits[24];
  if (v != nullptr && v->get_int64().get(i) == simdjson::SUCCESS) {
    const auto r = std::to_chars(digits, digits + sizeof(digits), i);
    out->assign(digits, r.ptr);
  } else if (v != nullptr && v->get_uint64().get(u) == simdjson::SUCCESS) {
    const auto r = std::to_chars(digits, digits + sizeof(digits), u);
    out->assign(digits, r.ptr);
  } else if (v != nullptr && !v->is_null() && !v->is_string()) {
    *f = Fail(kAccount, " must be a string or an integer");
    return false;
  } else if (!GetRequiredString(v, kAccount, kMaxAccountChars, out, f)) {
    return false;
  }
  return true;
}

// timestamp: RFC 3339, within [min_timestamp_us, now_us + max_future_us].
bool ParseTimestamp(const dom::element* v, const ParseOptions& options, int64_t* out, Failure* f) {
  if (v == nullptr || v->is_null()) {
    *f = Fail(kTimestamp, " is required");
    return false;
  }
  std::string_view s;
  if (v->get_string().get(s) != simdjson::SUCCESS) {
    *f = Fail(kTimestamp, " must be a string");
    return false;
  }
  const std::optional<int64_t> ts = ParseRfc3339Micros(s);
  if (!ts) {
    *f = Fail(kTimestamp,
              " must be an RFC 3339 date-time with a time zone, e.g. 2026-11-25T10:00:00.000Z");
    return false;
  }
  int64_t latest = 0;
  if (__builtin_add_overflow(options.now_us, options.max_future_us, &latest)) {
    latest = options.max_future_us > 0 ? INT64_MAX : INT64_MIN;
  }
  if (*ts > latest) {
    *f = Fail(kTimestamp, " is more than " + FormatSpan(options.max_future_us) + " in the future");
    return false;
  }
  if (*ts < options.min_timestamp_us) {
    *f = Fail(kTimestamp, " is older than the retention window");
    return false;
  }
  *out = *ts;
  return true;
}

// An optional string of `key`: *out is "" when absent, null or "".
bool GetOptionalString(const dom::element* v, int key, size_t max_chars, std::string_view* out,
                       Failure* f) {
  *out = {};
  return v == nullptr || GetString(*v, key, max_chars, out, f);
}

// event_id: optional UUID, kept in canonical lowercase form.
bool ParseEventId(const dom::element* v, std::string* out, Failure* f) {
  std::string_view s;
  if (!GetOptionalString(v, kEventId, SIZE_MAX, &s, f)) return false;
  if (s.empty()) return true;
  std::optional<std::string> id = CanonicalUuid(s);
  if (!id) {
    *f = Fail(kEventId, " must be a UUID (8-4-4-4-12 hexadecimal digits)");
    return false;
  }
  *out = std::move(*id);
  return true;
}

// status: "success" (also when absent) or "error".
bool ParseStatus(const dom::element* v, EventStatus* out, Failure* f) {
  std::string_view s;
  if (!GetOptionalString(v, kStatus, SIZE_MAX, &s, f)) return false;
  if (s.empty() || s == "success") {
    *out = EventStatus::kSuccess;
  } else if (s == "error") {
    *out = EventStatus::kError;
  } else {
    *f = Fail(kStatus, " must be \"success\" or \"error\"");
    return false;
  }
  return true;
}

// duration_ms: optional number in [0, kMaxDurationMs]; -0 becomes 0.
bool ParseDuration(const dom::element* v, std::optional<double>* out, Failure* f) {
  out->reset();
  if (v == nullptr || v->is_null()) return true;
  double d = 0;
  // get_double() converts int64/uint64 too; simdjson never yields inf/NaN
  // (1e400 is a parse error), the range check below also rules them out.
  if (v->get_double().get(d) != simdjson::SUCCESS) {
    *f = Fail(kDuration, " must be a number");
    return false;
  }
  if (!(d >= 0.0 && d <= kMaxDurationMs)) {
    *f = Fail(kDuration, " must be between 0 and 86400000 (one day)");
    return false;
  }
  *out = d == 0.0 ? 0.0 : d;  // no -0
  return true;
}

// One event object; keys are checked in the order of the rules above.
bool ParseObject(dom::object obj, const ParseOptions& options, UsageEvent* e, Failure* f) {
  http::KnownKeys<kKeyCount> fields;
  if (const int duplicate = fields.Collect(obj, KeyOf); duplicate >= 0) {
    f->key = duplicate;
    f->message = "duplicate key";
    return false;
  }
  std::string_view error_type, error_message;
  if (!GetRequiredString(fields.Get(kConnector), kConnector, kMaxConnectorChars, &e->connector,
                         f) ||
      !GetRequiredString(fields.Get(kOperation), kOperation, kMaxOperationChars, &e->operation,
                         f) ||
      !ParseAccount(fields.Get(kAccount), &e->make_account_id, f) ||
      !ParseTimestamp(fields.Get(kTimestamp), options, &e->timestamp_us, f) ||
      !ParseEventId(fields.Get(kEventId), &e->id, f) ||
      !ParseStatus(fields.Get(kStatus), &e->status, f) ||
      !GetOptionalString(fields.Get(kErrorType), kErrorType, kMaxErrorTypeChars, &error_type, f)) {
    return false;
  }
  e->error_type.assign(error_type.data(), error_type.size());
  if (!GetOptionalString(fields.Get(kErrorMessage), kErrorMessage, kMaxErrorMessageChars,
                         &error_message, f)) {
    return false;
  }
  e->error_message.assign(error_message.data(), error_message.size());
  return ParseDuration(fields.Get(kDuration), &e->duration_ms, f);
}

// One parser and one padded input buffer per thread: no allocation per request
// once they have grown to the usual body size.
struct ThreadState {
  dom::parser parser;
  std::unique_ptr<char[]> buf;
  size_t buf_capacity = 0;  // bytes usable for input, SIMDJSON_PADDING more allocated

  // Copies `body` into the padded buffer and parses it.
  simdjson::error_code Parse(std::string_view body, dom::element* root) {
    if (!buf || body.size() > buf_capacity) {
      size_t cap = buf_capacity < 4096 ? 4096 : buf_capacity;
      while (cap < body.size()) cap = cap > SIZE_MAX / 2 ? body.size() : cap * 2;
      if (cap > SIZE_MAX - simdjson::SIMDJSON_PADDING) return simdjson::CAPACITY;
      buf.reset();
      buf_capacity = 0;
      buf.reset(new (std::nothrow) char[cap + simdjson::SIMDJSON_PADDING]);
      if (!buf) return simdjson::MEMALLOC;
      buf_capacity = cap;
    }
    if (!body.empty()) std::memcpy(buf.get(), body.data(), body.size());
    std::memset(buf.get() + body.size(), 0, simdjson::SIMDJSON_PADDING);
    return parser.parse(buf.get(), body.size(), false).get(*root);
  }

  void Trim() {
    if (buf_capacity > kRetainBytes) {
      buf.reset();
      buf_capacity = 0;
    }
    if (parser.capacity() > kRetainBytes) parser = dom::parser();
  }
};

ThreadState& State() {
  thread_local ThreadState state;
  return state;
}

struct TrimOnExit {
  ThreadState& state;
  ~TrimOnExit() { state.Trim(); }
};

// Parses `body` on this thread's parser and hands the root to `parse_root`; the syntax
// errors and running out of memory (413) are answered here, once for both entry points.
template <typename Result, typename ParseRoot>
Result WithRoot(std::string_view body, ParseRoot&& parse_root) {
  try {
    ThreadState& state = State();
    TrimOnExit trim{state};
    dom::element root;
    if (auto err = http::JsonSyntaxError(state.Parse(body, &root))) return std::move(*err);
    return parse_root(root);
  } catch (const std::exception&) {  // std::bad_alloc from a string
    return BodyError(413, "body is too large");
  }
}

}  // namespace

std::variant<UsageEvent, RequestError> ParseUsageEvent(std::string_view body,
                                                       const ParseOptions& options) {
  using Result = std::variant<UsageEvent, RequestError>;
  return WithRoot<Result>(body, [&](dom::element root) -> Result {
    dom::object obj;
    if (root.get_object().get(obj) != simdjson::SUCCESS) {
      return BodyError(400, "body must be a JSON object");
    }
    UsageEvent event;
    Failure f;
    if (!ParseObject(obj, options, &event, &f)) return ToRequestError(std::move(f), -1);
    return event;
  });
}

std::variant<std::vector<UsageEvent>, RequestError> ParseUsageBatch(std::string_view body,
                                                                    const ParseOptions& options) {
  using Result = std::variant<std::vector<UsageEvent>, RequestError>;
  return WithRoot<Result>(body, [&](dom::element root) -> Result {
    dom::array items;
    if (root.get_array().get(items) != simdjson::SUCCESS) {
      return BodyError(400, "body must be a JSON array of events");
    }
    size_t count = items.size();
    if (count >= 0xFFFFFF) {  // simdjson saturates the count: walk the array
      count = 0;
      for (dom::element item : items) {
        (void)item;
        ++count;
      }
    }
    if (count == 0) return BodyError(400, "batch is empty");
    if (count > options.max_batch_events) {
      return BodyError(
          413, "batch has more than " + std::to_string(options.max_batch_events) + " events");
    }

    std::vector<UsageEvent> events;
    events.reserve(count);
    int64_t index = 0;
    for (dom::element item : items) {
      dom::object obj;
      Failure f;
      if (item.get_object().get(obj) != simdjson::SUCCESS) {
        f.message = "event must be a JSON object";
        return ToRequestError(std::move(f), index);
      }
      events.emplace_back();
      if (!ParseObject(obj, options, &events.back(), &f)) {
        return ToRequestError(std::move(f), index);
      }
      ++index;
    }
    return events;
  });
}

}  // namespace bpmc::ingestion
