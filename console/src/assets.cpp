// Lookup of the embedded console files (console/include/console/assets.h).
#include "console/assets.h"

#include "assets_data.h"

namespace bpmc::console {

const Asset* FindAsset(std::string_view path) {
  for (std::size_t i = 0; i < console_internal::kAssetCount; ++i)
    if (console_internal::kAssets[i].path == path) return &console_internal::kAssets[i];
  return nullptr;
}

}  // namespace bpmc::console
