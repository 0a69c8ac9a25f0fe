.PHONY: run test test-asan fuzz build bench soak clean check-compat deb

run:
	scripts/run.sh

# NGINX_VERSION=1.26.3 make test: against that nginx, built from source
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

# build/libnginx-mod-http-customer_<version>_<arch>.deb, linted
deb:
	scripts/deb.sh

bench:
	scripts/bench.sh

# make check-compat NGINX=/path/to/nginx [MODULE=/path/to/module.so]
check-compat:
	$(if $(NGINX),NGINX=$(NGINX)) $(if $(MODULE),MODULE=$(MODULE)) \
	    scripts/check-compat.sh

# mixed load with PostgreSQL restarts and nginx reloads, then invariants;
# SOAK_SECONDS (default 120) is passed through the environment
soak:
	scripts/soak.sh

clean:
	rm -rf build
