#!/usr/bin/env bash
# clang-tidy (the repo's .clang-tidy, every finding an error) over the
# sources of core/, persistence/, actors/, http/ and app/, with the compile
# commands of a configured build tree. Exits 1 on any finding.
#
#   clang_tidy.sh BUILD_DIR [JOBS]
set -euo pipefail

build=${1:?usage: clang_tidy.sh BUILD_DIR [JOBS]}
jobs=${2:-2}
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
build=$(cd "$build" && pwd)
for tool in clang-tidy run-clang-tidy; do
  command -v "$tool" >/dev/null || { echo "$tool is not installed (apt-get install clang-tidy)" >&2; exit 1; }
done
[[ -f $build/compile_commands.json ]] ||
  { echo "no compile_commands.json in $build (configure it first)" >&2; exit 1; }

log=$(mktemp)
trap 'rm -f "$log"' EXIT
rc=0
# run-clang-tidy: one clang-tidy per file, JOBS at a time; the generated
# sources (embedded migrations and scripts) are not ours to tidy.
run-clang-tidy -p "$build" -j "$jobs" -quiet \
  "^$root/(core|persistence|actors|http|app)/[^/]+\.cpp$" >"$log" 2>&1 || rc=$?
# clang-tidy colours its messages even into a file: plain text to read.
findings=$(sed 's/\x1b\[[0-9;]*m//g' "$log" | grep -E '(warning|error): ' | sort -u) || true
if [[ -n $findings ]]; then
  printf '%s\n' "$findings"
  echo "clang-tidy: $(wc -l <<<"$findings") finding(s) above (exit $rc)"
  exit 1
fi
if ((rc != 0)); then
  tail -n 30 "$log"
  echo "clang-tidy: failed without a finding (exit $rc), see above"
  exit 1
fi
echo "clang-tidy: no findings"
