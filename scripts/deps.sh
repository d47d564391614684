#!/bin/sh
# deps.sh [PKG...] - makes sure the Debian packages the build needs (and
# any named) are installed.
# Does nothing (and no network work) when they all are. As root it installs
# the missing ones with apt-get; otherwise it names them and fails.
set -eu

# python3-botocore: test_sigv4 and test_awsconf compare with botocore.
# python3-msgpack: examples/worker.py, the Python worker program that
# test_external and examples/pyqueen run.
PKGS="build-essential cmake pkg-config libuv1-dev libmsgpack-dev \
libboost-context-dev uthash-dev libcurl4-openssl-dev libssl-dev libexpat1-dev \
python3-botocore python3-msgpack valgrind"
# Extra packages a target needs (make fuzz: clang and its runtimes; make
# test and bench: the test servers' packages, SERVER_PKGS in the Makefile).
[ "$#" -gt 0 ] && PKGS="$PKGS $*"

if ! command -v dpkg-query >/dev/null 2>&1; then
  echo "deps.sh: not a Debian-like system (no dpkg-query)." >&2
  echo "deps.sh: make sure these (or their equivalents) are installed:" >&2
  echo "  $PKGS" >&2
  exit 0
fi

missing=""
for p in $PKGS; do
  status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  case "$status" in
    *" ok installed") ;;
    *) missing="$missing $p" ;;
  esac
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
  echo "deps.sh: missing packages:$missing" >&2
  echo "deps.sh: install them with: sudo apt-get install -y$missing" >&2
  exit 1
fi

export DEBIAN_FRONTEND=noninteractive
echo "deps.sh: installing:$missing"
# A server package (nginx) must not start its system service on install:
# the tests run their own, and a service failing to start (port 80 taken)
# would fail the install. policy-rc.d says so to invoke-rc.d, for this run.
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
  chmod 755 /usr/sbin/policy-rc.d
  trap 'rm -f /usr/sbin/policy-rc.d' EXIT
fi
# Update the package lists only when they are empty or the install fails.
if ! ls /var/lib/apt/lists/*_Packages >/dev/null 2>&1; then
  apt-get update
fi
# shellcheck disable=SC2086 # the list is meant to split into words
if ! apt-get install -y --no-install-recommends $missing; then
  apt-get update
  apt-get install -y --no-install-recommends $missing
fi
