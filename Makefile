# tmath front door.
#   make run    set up, build, run `tmath profile --quick`
#   make test   set up, build, run every test suite
#   make build  set up and build (CLI at build/tmath, Python package tmath in .venv)
#   make asan   build and run the C++ tests under ASan/UBSan (build-asan/; CPU only:
#               the CUDA plugin is left out, its code cannot run without a GPU)
#   make asan-build  the build half of `make asan`
#   make bench  build and run the Google Benchmark programs in bench/
#   make format clang-format the C++ sources
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
JOBS ?= $(shell nproc)
VENV := .venv
PYTHON := $(VENV)/bin/python

.PHONY: all setup configure build run test test-cpp test-python asan asan-build bench format clean

all: build

setup:
	@scripts/setup.sh

# Configure once; later builds re-run CMake by themselves when CMakeLists.txt changes.
build/CMakeCache.txt:
	cmake --preset release

configure: setup build/CMakeCache.txt

build: configure
	cmake --build build -j$(JOBS)
	@# The CMake build copies the Python extension into python/tmath/; a .pth file
	@# in .venv makes `import tmath` find that package from anywhere.
	@if ls python/tmath/_tmath*.so >/dev/null 2>&1; then \
	  site=$$($(PYTHON) -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])'); \
	  echo "$(CURDIR)/python" > "$$site/tmath-dev.pth"; \
	fi

run: build
	./build/tmath profile --quick

test: build
	@$(MAKE) --no-print-directory test-cpp test-python

test-cpp:
	ctest --test-dir build --output-on-failure -j$(JOBS)
	./build/tmath selftest

# Python tests run once python/tests exists; pytest's "no tests collected" (5) is not a failure.
test-python:
	@if [ -d python/tests ]; then \
	  rc=0; PYTHONPATH=$(CURDIR)/python:$${PYTHONPATH:-} $(PYTHON) -m pytest -q python/tests || rc=$$?; \
	  if [ $$rc -ne 0 ] && [ $$rc -ne 5 ]; then exit $$rc; fi; \
	else echo "python/tests not present: no Python tests to run"; fi

build-asan/CMakeCache.txt:
	cmake --preset asan-ubsan

# The sanitizer build alone (`make asan` builds and runs); .ci/run runs set-up once and
# then starts it in the background (NO_SETUP=1) while the release steps run.
asan-build: $(if $(NO_SETUP),,setup) build-asan/CMakeCache.txt
	cmake --build build-asan -j$(JOBS) --target tmath_tests

asan: asan-build
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:strict_string_checks=1 \
	UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  ctest --test-dir build-asan --output-on-failure -j$(JOBS)

bench: build
	@for b in build/bench/*; do [ -x "$$b" ] && "$$b" --benchmark_min_time=0.2; done

format:
	@command -v clang-format >/dev/null || EXTRA_APT_PACKAGES=clang-format scripts/setup.sh
	find src include tests bench \( -name '*.cpp' -o -name '*.h' \) -print0 | xargs -0 -r clang-format -i

clean:
	rm -rf build build-asan build-debug
