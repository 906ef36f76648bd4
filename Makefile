# The two commands that matter: `make demo` and `make test`. Both set up first.
JOBS ?= $(shell nproc)
# ccache hits across clones in other folders (CI builds a fresh clone each time).
export CCACHE_BASEDIR := $(CURDIR)
export CCACHE_NOHASHDIR := 1
BUILD ?= build
ASAN_BUILD ?= build-asan

.PHONY: all setup build build-asan demo test test-asan test-main bench format tidy clean

all: build

setup:
	@scripts/setup

$(BUILD)/build.ninja: CMakeLists.txt
	cmake -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null

build: setup $(BUILD)/build.ninja
	@ninja -C $(BUILD) -j $(JOBS)

$(ASAN_BUILD)/build.ninja: CMakeLists.txt
	cmake -S . -B $(ASAN_BUILD) -G Ninja -DCMAKE_BUILD_TYPE=Debug -DCLICKLAKE_SANITIZE=ON -DCLICKLAKE_CORE_ONLY=ON >/dev/null

build-asan: setup $(ASAN_BUILD)/build.ninja
	@ninja -C $(ASAN_BUILD) -j $(JOBS)

demo: build
	@scripts/demo

# Core libraries under ASan/UBSan first, then every test of the main build; ctest's
# summary (counts) is the last line.
test: build build-asan
	@scripts/test

bench: build
	@bench/run

format:
	@find src tests bench -name '*.h' -o -name '*.cc' | xargs clang-format -i

tidy: build
	@run-clang-tidy -p $(BUILD) -quiet 'src/.*\.cc$$'

clean:
	rm -rf $(BUILD) $(ASAN_BUILD)
