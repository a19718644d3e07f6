#!/usr/bin/env bash
# The CI command: installs dependencies, builds everything with clang and
# AddressSanitizer + UndefinedBehaviorSanitizer (plus the libFuzzer targets) into
# build/test, and runs every test with ctest. Extra arguments go to ctest, e.g.
#   ./test.sh -L unit            # only the unit tests
#   ./test.sh -R ingest -j2      # a subset, two at a time
# Exits with ctest's exit code.
set -euo pipefail
cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")"

scripts/deps.sh

# Habits enforced by the build: every C++ file as .clang-format lays it out, and no compiler
# warning (-Werror below). Fails before building, with the files and a diff.
scripts/check-format.sh

build=build/test
cmake -S . -B "$build" -G Ninja \
  -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DBPMC_SANITIZE=ON -DBPMC_BUILD_FUZZERS=ON -DBPMC_WERROR=ON
cmake --build "$build" -j"$(nproc)"

# LeakSanitizer cannot run when the process is traced (strace, gdb, some sandboxes and
# container runtimes): it then dies with "LeakSanitizer has encountered a fatal error"
# and every test would fail for that alone. Probe it once with a program that leaks on
# purpose: keep leak detection when LeakSanitizer reports the leak, disable it otherwise.
# (On the Debian 12 CI machine, not traced, it works and stays on.)
probe_dir=$(mktemp -d)
echo 'int main() { new int[4]; return 0; }' >"$probe_dir/leak.cpp"
detect_leaks=0
probe_output=""
if clang++ -fsanitize=address -o "$probe_dir/leak" "$probe_dir/leak.cpp"; then
  probe_output=$(ASAN_OPTIONS=detect_leaks=1 "$probe_dir/leak" 2>&1 || true)
fi
if [[ $probe_output == *"detected memory leaks"* ]]; then
  detect_leaks=1
else
  echo "test.sh: LeakSanitizer does not work here (traced process?): leak detection off" >&2
fi
rm -rf "$probe_dir"

# abort_on_error: a sanitizer report kills the test with SIGABRT, so ctest shows it failed
# even when the report happens during exit.
export ASAN_OPTIONS="detect_leaks=${detect_leaks}:abort_on_error=1"
export LSAN_OPTIONS="suppressions=$PWD/tests/lsan.supp:print_suppressions=0"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"

exec ctest --test-dir "$build" --output-on-failure "$@"
