.PHONY: run test test-asan build bench clean

run:
	scripts/run.sh

test:
	scripts/test.sh

# nginx and the module built with ASan + UBSan, then every test
test-asan:
	scripts/asan.sh

build:
	scripts/deps.sh
	scripts/build.sh

bench:
	scripts/bench.sh

clean:
	rm -rf build
