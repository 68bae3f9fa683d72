# syntax: legacy builder (docker CLI without buildx, engine 20.10): no
# BuildKit-only features (no RUN --mount, no secrets) anywhere in this file.
#
# The builder image: dnsguard, cage-init and cagent-relay compiled from the
# context's sources, on a toolchain of its own. It is a file of its own so
# that its `docker build` runs *beside* the workbench's (image/Dockerfile):
# the classic builder builds every stage before its target, one after the
# other, so in one file the compile could only start once the workbench's
# 400 packages were in, and a build of any later stage would compile again.
# Here it needs only the base image: setup.sh (image/prepare-layers.sh)
# starts it as soon as the base image exists, while the workbench's packages
# download and unpack — the compile has CPUs to itself that the package
# installs leave idle — and cagent builds it beside the npm stage.
# The runtime stage of image/Dockerfile copies the three binaries from the
# result, which cagent tags <repository>:stage-builder and passes as the
# build arg BUILDER_IMAGE.
#
# Build by hand (from the source tree):
#   docker build -f image/builder.Dockerfile -t cagent:stage-builder .
ARG BASE=debian:bookworm-slim

FROM ${BASE} AS builddeps
# No step here may equal one of image/Dockerfile's: this build runs beside
# that file's, and two builds that run the same step on the same parent at
# once make two different layers for it; a later build then finds either in
# the cache, and with the wrong one it rebuilds everything after it (the
# workbench's 400 packages). So no shared os stage: the options go on the
# command line.
ENV DEBIAN_FRONTEND=noninteractive
# The compiler and the -dev libraries the three programs link; the runtime
# libraries of the final image come with its workbench (image/Dockerfile).
# --force-unsafe-io: see image/Dockerfile.
RUN apt-get update \
 && apt-get install -y --no-install-recommends -o Dpkg::Options::=--force-unsafe-io \
      g++ make cmake pkg-config \
      libldns-dev libnftnl-dev libmnl-dev libboost1.81-dev libtomlplusplus-dev libyaml-cpp-dev \
      libssl-dev libpsl-dev \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/archives/*.deb

FROM builddeps AS builder
# Sources last, and only the folders the CMake configure reads: editing
# cagent's code re-runs only what follows, editing image/ or docs not even
# that. (A new top-level source folder must be added here.)
COPY CMakeLists.txt config-default.yaml /src/
COPY nft /src/nft
COPY dnsguard /src/dnsguard
COPY launcher /src/launcher
COPY bench /src/bench
COPY cmd /src/cmd
# -O2 without -g: the binaries are stripped on install, so debug info would
# be written only to be thrown away (a quarter of the compile's time here);
# -g does not change the code GCC generates, so the image's binaries are the
# ones a RelWithDebInfo build makes, stripped.
RUN cmake -S /src -B /build -DCMAKE_BUILD_TYPE=RelWithDebInfo "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O2 -DNDEBUG" \
      -DCAGENT_TESTS=OFF \
 && cmake --build /build -j"$(nproc)" --target dnsguard cage-init cagent-relay \
 && install -m 0755 -s /build/bin/dnsguard /build/bin/cage-init /build/bin/cagent-relay /usr/local/bin/
# Last: the label by which cagent finds the stage results a rebuild replaced
# (see kThrowawayStages in launcher/host/image.hpp).
LABEL cagent.stage=builder
