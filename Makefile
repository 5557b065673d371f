# The two commands: `make demo` runs the example, `make test` runs the tests.
# Both install what is missing first (Debian packages, ONNX Runtime).

ORT_LIB ?= $(CURDIR)/third_party/onnxruntime/libonnxruntime.so.1
export ONNXRUNTIME_LIB ?= $(ORT_LIB)

GO ?= go

.PHONY: demo test test-beam deps vet bench models bench-http

deps:
	@scripts/install-deps.sh

demo: deps
	$(GO) run ./examples/realtime -batch -cache

test: deps vet test-beam
	$(GO) test -race -count=1 ./...

# beam/ is a module of its own (Beam's dependencies stay out of servekit's), so
# ./... above does not reach it. No -race here: Beam's race build costs about
# 7 more minutes of CPU from a cold cache on 2 cores; run it by hand
# (cd beam && go test -race ./...), as was done when it was written.
test-beam: deps
	cd beam && $(GO) vet ./... && $(GO) test -count=1 ./...

vet:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "gofmt: files above need formatting"; exit 1; }
	$(GO) vet ./...

bench: deps
	$(GO) test -run '^$$' -bench . -benchmem ./...

models:
	$(GO) run ./internal/onnxbuild/cmd/genmodels

bench-http: deps
	bench/http.sh
