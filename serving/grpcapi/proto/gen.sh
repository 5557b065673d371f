#!/usr/bin/env bash
# Regenerates serving/grpcapi/inferencepb from grpc_predict_v2.proto and
# serving/modelconfigpb from model_config.proto (Triton's ModelConfig), byte
# for byte: Debian's protoc (package protobuf-compiler, 3.21.12 here)
# with protoc-gen-go and protoc-gen-connect-go at pinned versions, run
# through `go run`. CI does not run this: the generated code is committed.
set -euo pipefail
root=$(cd "$(dirname "$0")/../../.." && pwd)
cd "$root"
GEN_GO=google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12
GEN_CONNECT=connectrpc.com/connect/cmd/protoc-gen-connect-go@v1.21.1

command -v protoc >/dev/null || { echo "proto: protoc missing: apt-get install protobuf-compiler" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# protoc runs plugins as executables; these wrappers make each a `go run`.
printf '#!/bin/sh\nexec go run %s "$@"\n' "$GEN_GO" >"$tmp/protoc-gen-go"
printf '#!/bin/sh\nexec go run %s "$@"\n' "$GEN_CONNECT" >"$tmp/protoc-gen-connect-go"
chmod +x "$tmp"/protoc-gen-*
# Build both first, so protoc's plugin calls do not race to download.
go run "$GEN_GO" --version >/dev/null
go run "$GEN_CONNECT" --version >/dev/null 2>&1 || true

# The service imports model_config.proto (Triton's ModelConfig, for the
# ModelConfig RPC), whose Go package is serving/modelconfigpb.
protoc -I serving/grpcapi/proto -I serving/modelconfigpb \
	--plugin=protoc-gen-go="$tmp/protoc-gen-go" --go_out=. --go_opt=module=github.com/servekit/servekit \
	--plugin=protoc-gen-connect-go="$tmp/protoc-gen-connect-go" --connect-go_out=. --connect-go_opt=module=github.com/servekit/servekit \
	grpc_predict_v2.proto
# The model configuration lives beside its Go package, not under grpcapi:
# the repository reads it and every transport may serve it. Both folders
# are on the include path, so the service can import it.
protoc -I serving/grpcapi/proto -I serving/modelconfigpb \
	--plugin=protoc-gen-go="$tmp/protoc-gen-go" --go_out=. --go_opt=module=github.com/servekit/servekit \
	model_config.proto
