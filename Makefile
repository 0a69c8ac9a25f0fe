.PHONY: run test build bench clean

run:
	scripts/run.sh

test:
	scripts/test.sh

build:
	scripts/deps.sh
	scripts/build.sh

bench:
	scripts/bench.sh

clean:
	rm -rf build
