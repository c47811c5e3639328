#!/usr/bin/env bash
# Every C++ file of the project is as clang-format (the repo's .clang-format)
# would write it. Prints the files that are not, with the first differences,
# and exits 1; exits 0 when all are.
#
#   clang_format.sh [ROOT]
set -euo pipefail

root=${1:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
cd "$root"
command -v clang-format >/dev/null || { echo "clang-format is not installed" >&2; exit 1; }

mapfile -t files < <(git ls-files -co --exclude-standard -- \
  'core/*.[ch]pp' 'persistence/*.[ch]pp' 'actors/*.[ch]pp' 'http/*.[ch]pp' \
  'app/*.[ch]pp' 'tests/*.[ch]pp' 'bench/*.[ch]pp' | sort -u)
((${#files[@]})) || { echo "no C++ files found under $root" >&2; exit 1; }

bad=0
for f in "${files[@]}"; do
  [[ -f $f ]] || continue # deleted in the work tree
  if ! clang-format --dry-run --Werror "$f" >/dev/null 2>&1; then
    echo "not clang-formatted: $f (run: clang-format -i $f)"
    clang-format "$f" | diff -u "$f" - | sed -n '3,12p'
    bad=1
  fi
done
((bad == 0)) && echo "clang-format: ${#files[@]} files ok"
exit "$bad"
