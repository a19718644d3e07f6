#!/usr/bin/env bash
# Fails when a tracked C++ file differs from what clang-format makes of it with the repo's
# .clang-format (the habit STYLE.md asks for, enforced by ./test.sh). Prints the files and a
# diff of the first few; `scripts/check-format.sh --fix` rewrites them in place instead.
# Only files tracked by git are checked, so build output and data directories never count.
set -euo pipefail
cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.."

clang_format=${CLANG_FORMAT:-clang-format}
if ! command -v "$clang_format" >/dev/null; then
  echo "check-format.sh: $clang_format not found (scripts/deps.sh installs clang-format)" >&2
  exit 2
fi

mapfile -t files < <(git ls-files -- '*.cpp' '*.h' '*.cc' '*.hpp')
if [[ ${1:-} == --fix ]]; then
  "$clang_format" -i "${files[@]}"
  exit 0
fi

bad=()
for f in "${files[@]}"; do
  if ! "$clang_format" "$f" | cmp -s - "$f"; then
    bad+=("$f")
  fi
done
if ((${#bad[@]} == 0)); then
  echo "check-format.sh: ${#files[@]} files match .clang-format"
  exit 0
fi
echo "check-format.sh: ${#bad[@]} of ${#files[@]} files differ from .clang-format" \
  "(fix: scripts/check-format.sh --fix):" >&2
printf '  %s\n' "${bad[@]}" >&2
for f in "${bad[@]:0:3}"; do
  "$clang_format" "$f" | diff -u --label "$f" --label "$f (clang-format)" "$f" - >&2 || true
done
exit 1
