.PHONY: run test test-asan fuzz build bench clean

run:
	scripts/run.sh

test:
	scripts/test.sh

# nginx and the module built with ASan + UBSan, then every test
test-asan:
	scripts/asan.sh

# libFuzzer targets under ASan + UBSan, each run for FUZZ_SECONDS
FUZZ_SECONDS ?= 30
fuzz:
	FUZZ_SECONDS=$(FUZZ_SECONDS) scripts/fuzz.sh

build:
	scripts/deps.sh
	scripts/build.sh

bench:
	scripts/bench.sh

clean:
	rm -rf build
