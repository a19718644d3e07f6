#include "common/json_depth.h"

#include <cstdint>
#include <vector>

namespace bpmc {
namespace {

constexpr size_t kMaxKeyBytes = 64;

struct Frame {
  bool array = false;
  int64_t index = 0;  // arrays: the element being read
  std::string key;    // objects: the member being read
};

std::string PathOf(const std::vector<Frame>& frames) {
  std::string path;
  for (const Frame& f : frames) {
    if (f.array) {
      path += "[" + std::to_string(f.index) + "]";
    } else {
      if (!path.empty()) path += '.';
      path += f.key;
    }
  }
  return path;
}

}  // namespace

std::optional<std::string> FindTooDeep(std::string_view text, int max_depth) {
  std::vector<Frame> frames;
  bool expect_key = false;  // inside an object, before a member's name
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    switch (c) {
      case '"': {
        const size_t start = i + 1;
        for (++i; i < text.size() && text[i] != '"'; ++i)
          if (text[i] == '\\') ++i;  // skips the escaped character
        if (expect_key && !frames.empty()) {
          const size_t end = i < text.size() ? i : text.size();
          frames.back().key.assign(text.substr(start, std::min(end - start, kMaxKeyBytes)));
          expect_key = false;
        }
        break;
      }
      case '{':
      case '[':
        if (static_cast<int>(frames.size()) >= max_depth) return PathOf(frames);
        frames.push_back(Frame{c == '[', 0, {}});
        expect_key = c == '{';
        break;
      case '}':
      case ']':
        if (!frames.empty()) frames.pop_back();
        expect_key = false;
        break;
      case ',':
        if (!frames.empty()) {
          if (frames.back().array) {
            ++frames.back().index;
          } else {
            expect_key = true;
          }
        }
        break;
      default:
        break;
    }
  }
  return std::nullopt;
}

}  // namespace bpmc
