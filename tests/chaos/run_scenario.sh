#!/usr/bin/env bash
# tests/chaos/run_scenario.sh BUILD_DIR EXPECTED_EXIT SCENARIO OUT_DIR: runs
# one chaos scenario end to end with this tree's tools (bench/chaos.sh) and
# passes when it exits EXPECTED_EXIT: 0 for a scenario whose guarantee must
# hold, 1 for one the checker must refute (bench/scenarios/must-fail/).
set -uo pipefail
build_dir=$1 expected=$2 scenario=$3 out=$4
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)

rm -rf -- "$out"
POSTD_BUILD_DIR=$build_dir POSTD_SKIP_BUILD=1 bash "$repo/bench/chaos.sh" "$scenario" --out "$out"
rc=$?
if [[ $rc != "$expected" ]]; then
  printf 'chaos: %s exited %s, expected %s (output in %s)\n' "${scenario##*/}" "$rc" "$expected" "$out" >&2
  [[ ! -f $out/check.txt ]] || cat -- "$out/check.txt" >&2
  exit 1
fi
for f in check.json report.md timeline.png; do
  [[ -s $out/$f ]] || { printf 'chaos: %s made no %s\n' "${scenario##*/}" "$f" >&2; exit 1; }
done
printf 'chaos: %s exited %s as expected\n' "${scenario##*/}" "$rc"
