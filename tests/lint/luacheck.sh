#!/usr/bin/env bash
# Lints the Redis scripts in persistence/lua/ with luacheck (Debian package
# lua-check) and the repository's .luacheckrc. Included helpers are fragments
# (they use rcall and each other), so each script is checked as Redis runs
# it: its includes resolved by cmake/LuaIncludes.cmake, the resolver the
# build embeds with. Exits non-zero on any warning or error.
#
#   tests/lint/luacheck.sh
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.."
for tool in cmake luacheck; do
  command -v "$tool" >/dev/null || {
    echo "luacheck.sh: $tool not found (apt-get install lua-check cmake)" >&2
    exit 2
  }
done

resolved=$(mktemp -d)
trap 'rm -rf "$resolved"' EXIT
cmake -DSCRIPTS_DIR=persistence/lua -DOUTPUT_DIR="$resolved" \
      -P cmake/LuaIncludes.cmake
# Checked where the copies are, so a warning names its script by its file
# name (its line number counts lines of the resolved text).
config=$PWD/.luacheckrc
cd "$resolved"
luacheck --config "$config" --no-color --codes -- *.lua
