# The customer API: Debian 12's stock nginx with ngx_http_customer_module.
#
#   docker build -t customer-api .
#   docker compose -f docker/compose.yaml up --build    (with PostgreSQL)
#
# Stage 1 builds the module the way scripts/build.sh does, against the
# nginx-dev sources of the same Debian release; stage 2 is nginx plus the
# module's run-time libraries, run as an unprivileged user on port 8001.
# Versions are not pinned (Debian's point releases replace them): the
# module and the nginx binary come from the same package index within one
# build, and stage 2 refuses a module built for another nginx version.

FROM debian:bookworm-slim AS build

SHELL ["/bin/bash", "-o", "pipefail", "-c"]
ARG DEBIAN_FRONTEND=noninteractive

# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
        nginx-dev libpq-dev libyajl-dev libssl-dev libpcre2-dev zlib1g-dev \
        build-essential pkg-config \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /module
COPY config ./
COPY src/ ./src/

# As scripts/build.sh: Debian's nginx sources configured with Debian's own
# flags (conf_flags), so the .so is binary-compatible with /usr/sbin/nginx;
# only the modules are built.
RUN cp -r /usr/share/nginx/src /nginx
WORKDIR /nginx
RUN . ./conf_flags \
    && { ./configure \
            --with-cc-opt="-g -O2 -fPIC -Wall -Werror -Wno-deprecated-declarations" \
            --with-ld-opt="-fPIC" \
            "${NGX_CONF_FLAGS[@]}" \
            --add-dynamic-module=/module >configure.log \
        || { tail -n 30 configure.log >&2; exit 1; }; } \
    && make -s -f objs/Makefile -j"$(nproc)" modules \
    && mkdir /out \
    && cp objs/ngx_http_customer_module.so /out/ \
    && dpkg-query -W -f='${Version}' nginx-dev >/out/nginx.version


# Swagger UI for /docs/, from the npm package as scripts/swagger.sh does
FROM node:20-bookworm-slim AS swagger

WORKDIR /swagger
RUN npm pack --silent swagger-ui-dist@5 \
    && mkdir ui \
    && tar -xzf swagger-ui-dist-*.tgz -C ui --strip-components=1 \
    && rm -f ui/*.map ui/package.json ui/README.md
COPY openapi/swagger-initializer.js ui/swagger-initializer.js


FROM debian:bookworm-slim

SHELL ["/bin/bash", "-o", "pipefail", "-c"]
ARG DEBIAN_FRONTEND=noninteractive

# nginx: the binary only (nginx-core would add Debian's other modules);
# openssl: the entrypoint makes development keys and tokens with it.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
        nginx libpq5 libyajl2 curl ca-certificates openssl \
    && rm -rf /var/lib/apt/lists/* \
    && rm -f /etc/nginx/sites-enabled/default

COPY --from=build /out/ /tmp/module/
COPY sql/ /usr/share/customer/sql/
# where customer-migrate (scripts/migrate.sh) finds them
ENV CUSTOMER_SQL_DIR=/usr/share/customer/sql
COPY openapi/openapi.json /usr/share/customer/openapi.json
COPY --from=swagger /swagger/ui/ /usr/share/customer/swagger-ui/
COPY scripts/migrate.sh /usr/local/bin/customer-migrate
COPY docker/entrypoint.sh /usr/local/bin/customer-entrypoint
COPY docker/nginx.conf /etc/nginx/nginx.conf
COPY conf/compat/ /etc/nginx/compat/

# The module, if it was built for this very nginx (and it loads). An unprivileged user
# runs the master (and so the workers: no `user` directive); it owns the
# pid and temp directories and the key directory, which compose mounts as
# a volume (a new named volume takes over this ownership).
RUN built=$(cat /tmp/module/nginx.version) \
    && have=$(dpkg-query -W -f='${Version}' nginx) \
    && if [ "$built" != "$have" ]; then \
        echo "module built for nginx $built, image has $have:" \
             "rebuild with --no-cache" >&2; \
        exit 1; \
    fi \
    && install -m 0644 /tmp/module/ngx_http_customer_module.so \
        /usr/lib/nginx/modules/ \
    && rm -rf /tmp/module \
    && chmod 0755 /usr/local/bin/customer-migrate \
        /usr/local/bin/customer-entrypoint \
    && useradd --system --no-log-init --user-group --uid 10001 \
        --home-dir /var/lib/customer --shell /usr/sbin/nologin customer \
    && install -d -o customer -g customer -m 0755 \
        /var/lib/customer /run/customer /var/cache/customer \
    && install -d -o customer -g customer -m 0700 /var/lib/customer/keys \
    && printf 'load_module %s;\nevents {}\n' \
        /usr/lib/nginx/modules/ngx_http_customer_module.so >/tmp/load.conf \
    && nginx -t -q -c /tmp/load.conf \
    && rm /tmp/load.conf

USER 10001:10001
EXPOSE 8001

HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
    CMD curl -fs http://127.0.0.1:8001/health || exit 1

ENTRYPOINT ["/usr/local/bin/customer-entrypoint"]
CMD ["nginx", "-g", "daemon off;"]
