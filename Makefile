# Makefile - the front door: dependencies, configure, build and test.
#
#   make test    build/ (-O2 -g) and ctest, then build-asan/ (ASan+UBSan)
#                and ctest again
#   make demo    build, then run build/examples/hello
#   make build   configure and build build/
#   make asan    configure, build and test build-asan/ only
#   make clean   remove both build trees

BUILD_DIR ?= build
ASAN_DIR ?= build-asan
JOBS ?= 2
CTEST_JOBS ?= 1
CMAKE ?= cmake
CTEST ?= ctest
CMAKE_ARGS ?=

ASAN_ENV = ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
           UBSAN_OPTIONS=print_stacktrace=1 \
           BH_TEST_TIMEOUT_MULT=3

.PHONY: all deps build test test-build asan demo clean

all: build

deps:
	@sh scripts/deps.sh

build: deps
	$(CMAKE) -S . -B $(BUILD_DIR) -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	  -DCMAKE_C_FLAGS_RELWITHDEBINFO="-O2 -g" $(CMAKE_ARGS)
	$(CMAKE) --build $(BUILD_DIR) -j$(JOBS)

test-build: build
	cd $(BUILD_DIR) && $(CTEST) --output-on-failure -j$(CTEST_JOBS)

test: test-build
	$(MAKE) --no-print-directory asan

asan: deps
	$(CMAKE) -S . -B $(ASAN_DIR) -DCMAKE_BUILD_TYPE=Debug \
	  -DCMAKE_C_FLAGS_DEBUG="-O1 -g" -DBH_SANITIZER=address,undefined \
	  $(CMAKE_ARGS)
	$(CMAKE) --build $(ASAN_DIR) -j$(JOBS)
	cd $(ASAN_DIR) && $(ASAN_ENV) $(CTEST) --output-on-failure -j$(CTEST_JOBS)

demo: build
	./$(BUILD_DIR)/examples/hello

clean:
	rm -rf $(BUILD_DIR) $(ASAN_DIR)
