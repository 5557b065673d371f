# The two commands: `make demo` serves the demo model, `make test` runs the tests.
# Both install what is missing first (Debian packages, ONNX Runtime).

ORT_LIB ?= $(CURDIR)/third_party/onnxruntime/libonnxruntime.so.1
export ONNXRUNTIME_LIB ?= $(ORT_LIB)

GO ?= go

# Three modules: the root, beam/ and deploy/ (README "Install" has the tags).
# go.work joins them for development, so beam/ builds against this checkout's
# root instead of the release its go.mod requires. The root and deploy/ are
# tested as users get them, each with its own go.mod (GOWORK=off: in the
# workspace, beam's and deploy's requirements could raise the root's
# dependencies); beam/ with the workspace.
export GOWORK := off
WORK := GOWORK=$(CURDIR)/go.work

.PHONY: demo closedloop test test-arm64 deps vet tidy release bench models bench-http bench-http-batch bench-grpc bench-quant proto gpu-check overload soak fuzz attacks

deps:
	@scripts/install-deps.sh

# The demo repository (testdata/repository: batching and the response cache
# on in its config.pbtxt) through servekit serve, on :8080 with /metrics there
# too (README's curl and grpcurl lines, examples/monitoring's scrape config);
# gRPC also on its own port, 8001.
demo: deps
	$(GO) run ./cmd/servekit serve --model-repository testdata/repository --http-port 8080 --metrics-port 8080

# The closed loop in about a minute: batch scoring, serving, drift →
# retraining → shadow → canary (README "The closed loop"). Flags through
# ARGS, e.g. make closedloop ARGS=-break-v2 or ARGS=-serve.
closedloop: deps
	$(GO) run ./examples/closedloop $(ARGS)

# The second line runs the cost-budget tests (the decoders', batch/job's
# input buffers) and fuzz seeds without the race detector, which skews
# allocation counts (serving's package doc, "Cost"). beam/ is a module of its own (Beam's dependencies
# stay out of servekit's), so ./... does not reach it. No -race there:
# Beam's race build costs about 7 more minutes of CPU from a cold cache on
# 2 cores; run it by hand (cd beam && go test -race ./...), as was done
# when it was written.
test: deps vet
	$(GO) test -race -count=1 ./...
	$(GO) test -count=1 -run 'Budget|^Fuzz' ./serving/... ./cache/... ./cmd/servekit ./batch/job
	cd deploy && $(GO) test -count=1 ./...
	cd beam && $(WORK) $(GO) test -count=1 ./...
	scripts/check-modules.sh
	scripts/test-arm64.sh

# go mod tidy ignores go.work (golang/go#50750), and the release of the
# root that beam/go.mod requires may not have what this checkout's beam/
# imports yet: beam/ is tidied against this checkout through a replace that
# is dropped again.
tidy:
	$(GO) mod tidy
	cd deploy && $(GO) mod tidy
	cd beam && $(GO) mod edit -replace github.com/servekit/servekit=../ && \
		{ $(GO) mod tidy; s=$$?; $(GO) mod edit -dropreplace github.com/servekit/servekit; exit $$s; }

# Tags vX.Y.Z, beam/vX.Y.Z and deploy/vX.Y.Z at HEAD (README "Install"):
# make release VERSION=v0.2.0
release:
	scripts/release.sh $(VERSION)

# The core packages' tests for linux/arm64, cross-compiled and run under
# qemu-user with ONNX Runtime's arm64 library (README "At the edge"); on a
# Linux x64 machine it installs the cross toolchain and qemu itself.
test-arm64:
	scripts/test-arm64.sh

vet:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "gofmt: files above need formatting"; exit 1; }
	$(GO) vet ./...
	$(GO) vet -tags servekit_nogrpc,servekit_noredis ./cmd/servekit
	cd deploy && $(GO) vet ./...
	cd beam && $(WORK) $(GO) vet ./...

bench: deps
	$(GO) test -run '^$$' -bench . -benchmem ./...

models:
	$(GO) run ./internal/onnxbuild/cmd/genmodels

bench-http: deps
	bench/http.sh

bench-http-batch: deps
	bench/http-batch.sh

bench-grpc: deps
	bench/grpc.sh

# FP32 vs FP16 vs INT8 of the wide MLP and the conv net on the CPU: error,
# latency, throughput and the kernels ONNX Runtime runs (bench/quant).
bench-quant: deps
	mkdir -p bench/out && $(GO) run ./bench/quant -o bench/out/quant.md

# Builds the GPU tests and benchmark and stages them for a GPU machine
# (scripts/gpu-check.sh --local runs them on one instead).
gpu-check:
	scripts/gpu-check.sh

# Regenerates serving/grpcapi/inferencepb and serving/modelconfigpb from their
# .proto (needs Debian's protobuf-compiler; the plugins run through go run at
# pinned versions).
proto:
	serving/grpcapi/proto/gen.sh

# Reliability (reliability/): the short soak, SIGTERM and fault tests run in
# `make test`; these are the long versions. Output in reliability/out/.
overload: deps
	scripts/overload.sh

soak: deps
	cd reliability && $(GO) test -count=1 -timeout 30m -run '^TestSoak$$' -v . -soak 10m -out $(CURDIR)/reliability/out

# Issue 18's attack table (reliability/attacks_test.go): each row on fresh
# servekit serve --batch --cache replicas (3 each), peak RSS, statuses, time
# and honest probes beside it. ARGS='-attacks.rows ^6' picks rows,
# ARGS='-attacks.bin PATH' attacks another build. Output in reliability/out/.
attacks: deps
	cd reliability && $(GO) test -count=1 -timeout 30m -run '^TestAttacks$$' -v . -attacks -out $(CURDIR)/reliability/out $(ARGS)

# Each fuzz target of an untrusted-input decoder for FUZZTIME (default 10m),
# one at a time. `make test` runs their seed corpora.
FUZZTIME ?= 10m
fuzz:
	scripts/fuzz.sh $(FUZZTIME)
