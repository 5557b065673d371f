# The two commands: `make demo` runs the example, `make test` runs the tests.
# Both install what is missing first (Debian packages, ONNX Runtime).

ORT_LIB ?= $(CURDIR)/third_party/onnxruntime/libonnxruntime.so.1
export ONNXRUNTIME_LIB ?= $(ORT_LIB)

GO ?= go

.PHONY: demo test deps vet bench models bench-http bench-grpc proto gpu-check

deps:
	@scripts/install-deps.sh

demo: deps
	$(GO) run ./examples/realtime -batch -cache

test: deps vet
	$(GO) test -race -count=1 ./...

vet:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "gofmt: files above need formatting"; exit 1; }
	$(GO) vet ./...

bench: deps
	$(GO) test -run '^$$' -bench . -benchmem ./...

models:
	$(GO) run ./internal/onnxbuild/cmd/genmodels

bench-http: deps
	bench/http.sh

bench-grpc: deps
	bench/grpc.sh

# Builds the GPU tests and benchmark and stages them for a GPU machine
# (scripts/gpu-check.sh --local runs them on one instead).
gpu-check:
	scripts/gpu-check.sh

# Regenerates serving/grpcapi/inferencepb from its .proto (needs Debian's
# protobuf-compiler; the plugins run through go run at pinned versions).
proto:
	serving/grpcapi/proto/gen.sh
