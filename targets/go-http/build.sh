#!/bin/sh
# Build axt-go-http with Debian's Go, offline: a module without dependencies,
# no proxy, the build cache inside build/ (nothing written outside the folder).
set -eu
cd "$(dirname "$0")"
mkdir -p build
export GOCACHE="$PWD/build/gocache" GOPATH="$PWD/build/gopath" GOPROXY=off \
       GOFLAGS=-mod=mod GO111MODULE=on CGO_ENABLED=0 GOTOOLCHAIN=local
/usr/bin/go build -trimpath -o build/axt-go-http.tmp .
mv build/axt-go-http.tmp build/axt-go-http
