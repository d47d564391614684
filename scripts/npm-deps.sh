#!/bin/sh
# npm-deps.sh [DIR] - installs the npm packages of the test servers
# (tests/servers/package.json, pinned with its package-lock.json: s3rver)
# into DIR (default build-deps/npm, git-ignored; CMake's BH_NPM_DIR) with
# `npm ci`. Does nothing (and no network work) when DIR already holds the
# install of that very lock file. Brings Debian's nodejs and npm first only
# when there is no npm at all: a Node.js from elsewhere (with its own npm)
# conflicts with Debian's npm package.
set -eu
cd "$(dirname "$0")/.."
dir=${1:-build-deps/npm}
src=tests/servers

if cmp -s "$src/package-lock.json" "$dir/.installed-lock.json" 2>/dev/null; then
  exit 0
fi
if ! command -v npm >/dev/null 2>&1; then
  sh scripts/deps.sh nodejs npm
fi
echo "npm-deps.sh: installing the test servers' npm packages into $dir"
rm -rf "$dir"
mkdir -p "$dir"
cp "$src/package.json" "$src/package-lock.json" "$dir/"
(cd "$dir" && npm ci --no-audit --no-fund --omit=dev --loglevel=error)
# The stamp goes last: an install cut short is redone next time.
cp "$src/package-lock.json" "$dir/.installed-lock.json"
