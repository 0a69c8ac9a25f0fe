.PHONY: run test test-asan build bench soak clean

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

# mixed load with PostgreSQL restarts and nginx reloads, then invariants;
# SOAK_SECONDS (default 120) is passed through the environment
soak:
	scripts/soak.sh

clean:
	rm -rf build
