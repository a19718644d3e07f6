#pragma once

#include <string_view>

// The console's browser files (console/src, bundled by esbuild at build time),
// embedded in the binary so the exporter serves them with no files on disk.
// All data is static: the pointers and views stay valid for the whole program
// and may be read from any thread.
namespace bpmc::console {

struct Asset {
  std::string_view path;          // relative to /console/: "index.html", "app.js", "app.css"
  std::string_view content_type;  // e.g. "text/javascript; charset=utf-8"
  std::string_view body;
  std::string_view gzip;  // gzip -9n of body, or empty when gzip was not found at build time
  std::string_view etag;  // quoted strong ETag: "\"<16 hex of the body's SHA-256>\""
};

// The asset at `path` (relative to /console/, no leading slash), or nullptr.
const Asset* FindAsset(std::string_view path);

}  // namespace bpmc::console
