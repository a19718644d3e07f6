#pragma once
// The SQL text of the rollup, shared by the incremental step (rollup.cpp) and
// the rebuild (reaggregate.cpp). Private to the aggregation library.

#include <string>

namespace bpmc::aggregation {

// Memory for the step's hash aggregates: a 200k-event step stays in memory.
inline constexpr const char* kStepSettings = "SET LOCAL work_mem = '128MB'; SET LOCAL jit = off";
inline constexpr const char* kLastSeq =
    "SELECT last_seq, time_zone FROM rollup_state WHERE name = 'usage'";
inline constexpr const char* kSeqLastValue =
    "SELECT coalesce(pg_sequence_last_value(pg_get_serial_sequence('connector_usage', 'seq')"
    "::regclass), 0)";

// The aggregation statement, built once. One statement of data-modifying
// CTEs: `ev` is the slice of raw events, each target an INSERT ... ON CONFLICT
// DO UPDATE that adds to what the table holds.
// Incremental: $1 last_seq (exclusive), $2 upper seq (inclusive), $3 zone.
const std::string& IncrementalSql();
// Rebuild: $1..$2 the UTC hour range [h0, h1), $3 zone, $4 last_seq, $5..$6
// the local day range [d0, d1). The buckets were deleted before; monthly rows
// and account_first_seen are rebuilt by separate statements.
const std::string& RebuildSql();
// Lag: age of the oldest event above the watermark, and the sequence numbers
// above it (two float8 columns).
const std::string& LagSql();

// SQL: the start of the two-month activity window of month parity
// `parity` that holds the local day `day` (an SQL date expression): the
// day's month when its parity is `parity`, else the month before.
std::string ActivityWindowStartSql(const std::string& day, int parity);

}  // namespace bpmc::aggregation
