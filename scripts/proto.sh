#!/usr/bin/env bash
# Regenerates the Go code in proto/ with pinned generator versions.
set -euo pipefail
cd "$(dirname "$0")/.."
PROTOC_GEN_GO=v1.36.12
PROTOC_GEN_GO_GRPC=v1.6.2
BIN="$PWD/.bin"
mkdir -p "$BIN"
if ! command -v protoc >/dev/null; then
  echo "installing protobuf-compiler (apt)"; apt-get update -qq && apt-get install -y -qq protobuf-compiler
fi
GOBIN="$BIN" go install "google.golang.org/protobuf/cmd/protoc-gen-go@$PROTOC_GEN_GO"
GOBIN="$BIN" go install "google.golang.org/grpc/cmd/protoc-gen-go-grpc@$PROTOC_GEN_GO_GRPC"
export PATH="$BIN:$PATH"
for f in proto/*.proto; do
  protoc -I proto --go_out=. --go_opt=module=petrel --go-grpc_out=. --go-grpc_opt=module=petrel "$f"
done
echo "generated: $(ls proto/*/*.pb.go | tr '\n' ' ')"
