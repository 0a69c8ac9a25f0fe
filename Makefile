.PHONY: run test test-asan build bench clean check-compat

run:
	scripts/run.sh

# NGINX_VERSION=1.26.3 make test: against that nginx, built from source
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

# make check-compat NGINX=/path/to/nginx [MODULE=/path/to/module.so]
check-compat:
	$(if $(NGINX),NGINX=$(NGINX)) $(if $(MODULE),MODULE=$(MODULE)) \
	    scripts/check-compat.sh

clean:
	rm -rf build
