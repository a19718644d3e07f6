#pragma once

#include <cstddef>

#include "console/assets.h"

// The embedded files, generated at build time by console/cmake/EmbedAssets.cmake.
namespace bpmc::console::console_internal {

extern const Asset kAssets[];
extern const std::size_t kAssetCount;

}  // namespace bpmc::console::console_internal
