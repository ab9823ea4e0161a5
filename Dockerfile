# tokengate's container image: `./dev image` builds and smoke-tests it with podman;
# configs/kubernetes/ runs it as a native sidecar. Two stages: the build stage compiles only the
# `tokengate` target (Release); the runtime stage holds the binary and its shared libraries,
# runs as a non-root user, and needs no writable path but its data directory.

FROM debian:12-slim AS build
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      g++ make cmake ccache pkg-config \
      libboost1.81-dev libboost-json1.81-dev librocksdb-dev libssl-dev prometheus-cpp-dev libpq-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# Only what the server's build reads: the layers' sources, the top-level CMakeLists.txt and the
# OpenAPI document that proxy/CMakeLists.txt embeds.
COPY CMakeLists.txt ./
COPY docs/openapi.yaml docs/openapi.yaml
COPY store store
COPY tokenapi tokenapi
COPY proxy proxy
# The ccache directory is a build cache mount: a rebuild after a small change recompiles only
# what changed, and the cache never ends up in a layer. Precompiled headers are off here: ccache
# cannot reuse them, and without them every unchanged source is a cache hit.
RUN --mount=type=cache,target=/root/.ccache \
    cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DTOKENGATE_TESTS=OFF -DTOKENGATE_WERROR=ON \
      -DCMAKE_DISABLE_PRECOMPILE_HEADERS=ON \
 && CCACHE_DIR=/root/.ccache cmake --build build -j 2 --target tokengate \
 && strip build/tokengate

FROM debian:12-slim
# The shared libraries `ldd tokengate` lists, and mimalloc, which OpenSSL allocates from
# (proxy/openssl_memory.hpp): nothing else.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      librocksdb7.8 libboost-json1.81.0 libssl3 libprometheus-cpp-core1.0 libpq5 libmimalloc2.0 \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/log/apt /var/log/dpkg.log \
 && groupadd --system --gid 65532 tokengate \
 && useradd --system --uid 65532 --gid 65532 --home-dir /nonexistent --no-create-home \
      --shell /usr/sbin/nologin tokengate \
 && install -d -o 65532 -g 65532 -m 0700 /var/lib/tokengate
COPY --from=build /src/build/tokengate /usr/local/bin/tokengate
# The image's own defaults (configs/container.json): every interface of the pod, the
# application on 127.0.0.1:3000, the store (and by default the generated bootstrap key) on the
# data volume. Mount another file over it (configs/kubernetes/ does), or override one setting
# with a TOKENGATE_* variable.
COPY configs/container.json /etc/tokengate/tokengate.json
ENV TOKENGATE_CONFIG=/etc/tokengate/tokengate.json
VOLUME /var/lib/tokengate
EXPOSE 8080 9901
# Numeric, so that Kubernetes' runAsNonRoot can verify it.
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/tokengate"]
CMD ["serve"]
