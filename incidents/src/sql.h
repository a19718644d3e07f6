#pragma once
// SQL fragments shared by the incidents sources.

namespace bpmc::incidents::sql {

// Exact conversions between Unix microseconds and TIMESTAMPTZ (no float rounding).
#define BPMC_TS(n) "(timestamptz 'epoch' + " n "::bigint * interval '1 microsecond')"
#define BPMC_US(col) "(extract(epoch FROM " col ") * 1000000)::bigint"

}  // namespace bpmc::incidents::sql
