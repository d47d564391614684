#!/bin/sh
# check.sh SRC_DIR [CC] - beehive installed as a user installs it (ctest's
# test_install). A fresh Release build of SRC_DIR, configured as a user
# does (so without -Werror), is installed into a temporary prefix; its
# build tree is deleted and the prefix moved elsewhere, so that nothing
# may point into either. Then, from the moved prefix:
#   - an outside program (app/) built with find_package(beehive), linked
#     with beehive::beehive shared and, beehive_USE_STATIC_LIBS=ON, static;
#     without pkg-config's modules, find_package fails naming them;
#   - the same program built with pkg-config;
#   - bin/beehive-predict, run from an empty directory, finding its data
#     relative to where it is.
# Each runs and must answer. Prints "install: ok" at the end.
set -eu

src=$(cd "$1" && pwd)
cc=${2:-cc}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/beehive-install.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
trap 'exit 1' HUP INT TERM # ctest's timeout: the EXIT trap still cleans up
log="$tmp/log"

fail() {
  echo "install: FAILED: $*" >&2
  [ -s "$log" ] && tail -n 30 "$log" >&2
  exit 1
}

# run WHAT CMD...: runs CMD with its output in $log, failing with WHAT;
# says how long it took.
run() {
  what=$1
  t0=$(date +%s)
  shift
  "$@" >"$log" 2>&1 || fail "$what"
  echo "install:   $what: $(($(date +%s) - t0)) s"
}

# The answer of the outside program at $1, run from an empty directory.
answers() {
  (cd "$tmp/empty" && "$1") >"$log" 2>&1 || fail "$1 did not run"
  grep -q "^answer 42 from beehive " "$log" || fail "$1: wrong answer"
}

mkdir "$tmp/empty"
echo "install: building $src (Release, $cc) and installing it"
run "configure" cmake -S "$src" -B "$tmp/build" -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_C_COMPILER="$cc" -DBH_BUILD_TESTS=OFF \
  -DCMAKE_INSTALL_PREFIX="$tmp/first"
# A user's build: warnings are errors only where the CI asks (BH_WERROR).
grep -q '^BH_WERROR:BOOL=OFF$' "$tmp/build/CMakeCache.txt" ||
  fail "a user's build treats warnings as errors"
run "build" cmake --build "$tmp/build" -j"${JOBS:-2}"
run "install" cmake --install "$tmp/build"
rm -rf "$tmp/build"
mv "$tmp/first" "$tmp/prefix"
p="$tmp/prefix"
libdir=$(dirname "$(find "$p" -name libbeehive.a)")

echo "install: find_package(beehive), shared and static"
for kind in shared static; do
  static=OFF
  [ "$kind" = static ] && static=ON
  run "configure app ($kind)" cmake -S "$src/tests/install/app" \
    -B "$tmp/app-$kind" -DCMAKE_C_COMPILER="$cc" \
    -DCMAKE_PREFIX_PATH="$p" -Dbeehive_USE_STATIC_LIBS=$static
  run "build app ($kind)" cmake --build "$tmp/app-$kind"
  needed=$(readelf -d "$tmp/app-$kind/outside" | grep -c 'libbeehive' || :)
  case "$kind:$needed" in
    shared:1 | static:0) ;;
    *) fail "app ($kind) links libbeehive.so $needed times" ;;
  esac
  answers "$tmp/app-$kind/outside"
done

echo "install: find_package(beehive) without its dependencies"
# pkg-config finding nothing: the error must name what to install.
if PKG_CONFIG_LIBDIR="$tmp/empty" cmake -S "$src/tests/install/app" \
  -B "$tmp/app-nodeps" -DCMAKE_C_COMPILER="$cc" \
  -DCMAKE_PREFIX_PATH="$p" >"$log" 2>&1; then
  fail "found without its dependencies"
fi
grep -q "libuv (Debian: libuv1-dev)" "$log" ||
  fail "the error does not name the missing package"

echo "install: pkg-config beehive"
export PKG_CONFIG_PATH="$libdir/pkgconfig"
# shellcheck disable=SC2046 # pkg-config's flags are meant to split
run "cc with pkg-config" "$cc" -o "$tmp/outside-pc" \
  "$src/tests/install/app/outside.c" $(pkg-config --cflags --libs beehive) \
  -Wl,-rpath,"$(pkg-config --variable=libdir beehive)"
answers "$tmp/outside-pc"

echo "install: beehive-predict from an empty directory"
(cd "$tmp/empty" && env -u BEEHIVE_DATA "$p/bin/beehive-predict" \
  --rows 200 --quiet --cache "$tmp/cache") >"$log" 2>&1 ||
  fail "beehive-predict did not run"
grep -q "^predict: rows 200, accuracy 0\.9" "$log" ||
  fail "beehive-predict: no accuracy line"
echo "install: ok"
