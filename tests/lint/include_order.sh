#!/usr/bin/env bash
# Imports run one way (STYLE.md): core -> persistence -> actors -> http -> app.
# A file in one of these folders may include the project's headers from its
# own folder and from those before it, never from one after it; and http/
# reaches storage only through actors (it never includes persistence/).
#
#   include_order.sh [ROOT]     check the tree at ROOT (default: this repo)
#   include_order.sh --self-test
#
# Prints each include that runs against the order (file:line: what) and exits
# 1 when there is one; exits 0 on a clean tree. --self-test checks that a
# tree with a wrong include is refused and a right one accepted.
set -euo pipefail

layers=(core persistence actors http app)

rank() {
  local i
  for i in "${!layers[@]}"; do
    [[ ${layers[i]} == "$1" ]] && { printf '%s\n' "$i"; return 0; }
  done
  return 1
}

check() {
  local root=$1 bad=0 file line rest target from to layer
  for layer in "${layers[@]}"; do
    [[ -d $root/$layer ]] || continue
    from=$(rank "$layer")
    while IFS=: read -r file line rest; do
      [[ $rest =~ ^[[:space:]]*#[[:space:]]*include[[:space:]]*\"([a-z_]+)/ ]] || continue
      target=${BASH_REMATCH[1]}
      to=$(rank "$target") || continue # not a layer (e.g. a generated file)
      if ((to > from)); then
        printf '%s:%s: %s/ includes %s/, which comes after it (%s)\n' \
          "${file#"$root"/}" "$line" "$layer" "$target" "${layers[*]}"
        bad=1
      elif [[ $layer == http && $target == persistence ]]; then
        printf '%s:%s: http/ includes persistence/ (it reaches storage through actors/)\n' \
          "${file#"$root"/}" "$line"
        bad=1
      fi
    done < <(grep -rn --include='*.hpp' --include='*.cpp' --include='*.h' \
      -E '^[[:space:]]*#[[:space:]]*include[[:space:]]*"' "$root/$layer" || true)
  done
  return "$bad"
}

self_test() {
  local tmp rc=0
  tmp=$(mktemp -d)
  trap 'rm -rf -- "$tmp"' RETURN
  mkdir -p "$tmp/core" "$tmp/actors"
  printf '#include "core/a.hpp"\n' >"$tmp/actors/b.hpp"
  printf '#pragma once\n' >"$tmp/core/a.hpp"
  check "$tmp" >/dev/null || { echo "self-test: a right include was refused"; rc=1; }
  printf '#include "actors/b.hpp"\n' >>"$tmp/core/a.hpp"
  if out=$(check "$tmp"); then
    echo "self-test: core/ including actors/ was accepted"
    rc=1
  else
    printf 'self-test: refused as it should be: %s\n' "$out"
  fi
  return "$rc"
}

if [[ ${1:-} == --self-test ]]; then
  self_test
else
  root=${1:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
  check "$root" && echo "include order: ${layers[*]}: ok"
fi
