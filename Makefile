# Makefile - the front door: dependencies, configure, build and test.
#
#   make test    build/ (-O2 -g) and ctest, then build-asan/ (ASan+UBSan)
#                and ctest again, then make matrix
#   make demo    build, then run the main job, build/examples/predict
#                (100,000 rows of predictions; hello stays built too)
#   make build   configure and build build/
#   make asan    configure, build and test build-asan/ only
#   make matrix  build the library and examples with gcc and clang in every
#                build type (Debug, RelWithDebInfo, Release, MinSizeRel),
#                warnings as errors, into build-matrix/ (no tests)
#   make bench   build-bench/ (-O2 -DNDEBUG, benchmarks on) and run the
#                whole suite (scripts/bench.sh): prints the figures and
#                rewrites docs/PERFORMANCE.md
#   make bench-profile  build-profile/ and profile the hot paths
#                (scripts/bench-profile.sh)
#   make soak    the chaos run: 2 x 200,000 delegations while a worker is
#                SIGKILLed every 20 ms; prints one "soak: ..." line
#   make fuzz    libFuzzer on the frame and message decoder, then on the
#                handshake between hosts, FUZZ_SECONDS each (default 60)
#   make clean   remove the build trees
#
# .ci/run runs make test. Warnings are errors (BH_WERROR)
# in the CI's builds only, build-asan/ and build-matrix/: build/ is also
# make demo's, a user's. With another compiler: make test WERROR=OFF.
#
# make test and make bench also install what the test servers need
# (tests/servers.h): SERVER_PKGS from Debian, s3rver from npm into
# build-deps/npm (scripts/npm-deps.sh), and OpenMPI (MPI_PKGS) before
# they configure. make demo needs none of it.

BUILD_DIR ?= build
ASAN_DIR ?= build-asan
BENCH_DIR ?= build-bench
PROFILE_DIR ?= build-profile
JOBS ?= 2
CTEST_JOBS ?= 1
CMAKE ?= cmake
CTEST ?= ctest
CMAKE_ARGS ?=
WERROR ?= ON
MATRIX_DIR ?= build-matrix

ASAN_ENV = ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
           UBSAN_OPTIONS=print_stacktrace=1 \
           BH_TEST_TIMEOUT_MULT=3

# nginx with the echo module (the HTTP server; nginx-light brings both),
# aiohttp, botocore and uvloop (the SigV4-checking S3 proxy, run by
# Debian's /usr/bin/python3), curl (the tests' command-line client),
# openssl (the certificate of nginx's TLS listener), iproute2 (the tests'
# hosts: network namespaces, tests/netns.h).
SERVER_PKGS = nginx-light libnginx-mod-http-echo python3-aiohttp \
              python3-botocore python3-uvloop curl openssl iproute2
# OpenMPI: libbeehive_mpi and beehive-predict --mpi are built only where
# CMake finds an MPI, and test_mpi runs mpirun on this host (it skips
# without them). So they must be there before the build configures.
MPI_PKGS = openmpi-bin libopenmpi-dev

.PHONY: all deps server-deps build test test-build asan matrix demo bench \
        bench-profile clean soak fuzz

all: build

deps:
	@sh scripts/deps.sh

server-deps:
	@sh scripts/deps.sh $(SERVER_PKGS) $(MPI_PKGS)
	@sh scripts/npm-deps.sh

build: deps
	$(CMAKE) -S . -B $(BUILD_DIR) -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	  -DCMAKE_C_FLAGS_RELWITHDEBINFO="-O2 -g" $(CMAKE_ARGS)
	$(CMAKE) --build $(BUILD_DIR) -j$(JOBS)

# server-deps first: the configure must find MPI (MPI_PKGS).
test-build: server-deps
	$(MAKE) --no-print-directory build
	cd $(BUILD_DIR) && $(CTEST) --output-on-failure -j$(CTEST_JOBS)

test: test-build
	$(MAKE) --no-print-directory asan
	$(MAKE) --no-print-directory matrix

asan: deps server-deps
	$(CMAKE) -S . -B $(ASAN_DIR) -DCMAKE_BUILD_TYPE=Debug \
	  -DCMAKE_C_FLAGS_DEBUG="-O1 -g" -DBH_SANITIZER=address,undefined \
	  -DBH_WERROR=$(WERROR) $(CMAKE_ARGS)
	$(CMAKE) --build $(ASAN_DIR) -j$(JOBS)
	cd $(ASAN_DIR) && $(ASAN_ENV) $(CTEST) --output-on-failure -j$(CTEST_JOBS)

# Each build type's optimiser and NDEBUG warn about different things (gcc
# -O3's -Wmaybe-uninitialized, a variable only asserts read).
matrix: deps
	@sh scripts/deps.sh clang
	MATRIX_ARGS="-DBH_WERROR=$(WERROR) -DBH_BUILD_TESTS=OFF \
	  -DBH_BUILD_EXAMPLES=ON $(CMAKE_ARGS)" JOBS=$(JOBS) CMAKE=$(CMAKE) \
	  sh scripts/build-matrix.sh $(MATRIX_DIR)

demo: build
	./$(BUILD_DIR)/examples/predict

bench: deps server-deps
	$(CMAKE) -S . -B $(BENCH_DIR) -DCMAKE_BUILD_TYPE=Release \
	  -DCMAKE_C_FLAGS_RELEASE="-O2 -DNDEBUG" -DBH_BUILD_BENCH=ON \
	  -DBH_BUILD_TESTS=OFF -DBH_BUILD_EXAMPLES=ON $(CMAKE_ARGS)
	$(CMAKE) --build $(BENCH_DIR) -j$(JOBS)
	bash scripts/bench.sh $(BENCH_DIR)

bench-profile: deps
	$(CMAKE) -S . -B $(PROFILE_DIR) -DCMAKE_BUILD_TYPE=Release \
	  -DCMAKE_C_FLAGS_RELEASE="-O2 -g -fno-omit-frame-pointer -DNDEBUG" \
	  -DBH_BUILD_BENCH=ON -DBH_BUILD_TESTS=OFF -DBH_BUILD_EXAMPLES=OFF \
	  $(CMAKE_ARGS)
	$(CMAKE) --build $(PROFILE_DIR) -j$(JOBS)
	bash scripts/bench-profile.sh $(PROFILE_DIR)

soak: build
	./$(BUILD_DIR)/tests/helpers/soak

FUZZ_SECONDS ?= 60
FUZZ_DIR ?= build-fuzz
fuzz:
	@sh scripts/deps.sh clang libclang-rt-14-dev
	mkdir -p $(FUZZ_DIR)/corpus $(FUZZ_DIR)/corpus-auth
	clang -std=c11 -D_GNU_SOURCE -g -O1 \
	  -fsanitize=fuzzer,address,undefined -Iinclude -Isrc \
	  tests/fuzz/fuzz_wire.c src/wire/wire.c src/wire/wire_put.c \
	  src/value/blob.c src/value/value.c src/value/fmt.c \
	  src/value/pack.c src/value/unpack.c src/value/walk.c src/base/buf.c \
	  src/base/alloc.c src/base/error.c \
	  -luv -lmsgpackc -o $(FUZZ_DIR)/fuzz_wire
	clang -std=c11 -D_GNU_SOURCE -g -O1 \
	  -fsanitize=fuzzer,address,undefined -Iinclude -Isrc \
	  tests/fuzz/fuzz_auth.c src/transport/auth.c -lcrypto \
	  -o $(FUZZ_DIR)/fuzz_auth
	$(FUZZ_DIR)/fuzz_wire $(FUZZ_DIR)/corpus tests/fuzz/corpus \
	  -max_total_time=$(FUZZ_SECONDS) -artifact_prefix=$(FUZZ_DIR)/
	$(FUZZ_DIR)/fuzz_auth $(FUZZ_DIR)/corpus-auth \
	  -max_total_time=$(FUZZ_SECONDS) -artifact_prefix=$(FUZZ_DIR)/

clean:
	rm -rf $(FUZZ_DIR) $(BUILD_DIR) $(ASAN_DIR) $(BENCH_DIR) $(PROFILE_DIR) \
	  $(MATRIX_DIR)
