# Kerf. Quick start: `make run` (kerfd on the emulated GPU), `make test`.
GO          ?= go
STATICCHECK ?= honnef.co/go/tools/cmd/staticcheck@v0.8.2
FUZZTIME    ?= 3s
# Spectral lints the OpenAPI document (lint-api); npm installs this exact
# version under .tools/ on first use.
SPECTRAL_VERSION ?= 6.16.3
SPECTRAL    := .tools/spectral-$(SPECTRAL_VERSION)/node_modules/.bin/spectral
# uPlot draws the web page's plots; profiles/web/vendor/uplot holds this
# exact release (web-vendor refetches it and checks it against the sums).
UPLOT_VERSION ?= 1.6.32
UPLOT_SHA256  ?= 4b8a8191e425658e3ea8c8c1314b0fc679c861ee3a1af2b20c7b16ba50b5133d
UPLOT_DIR     := profiles/web/vendor/uplot
BIN         := bin
# kerf version and kerfd --version print this (internal/buildinfo).
VERSION     ?= $(shell git describe --tags --always --dirty 2>/dev/null)
LDFLAGS     := -X github.com/kerf-edge/kerf/internal/buildinfo.version=$(VERSION)
# Files `make generate` writes; generate-check fails when they are stale.
GENERATED   := docs/calls.md abi/include/kerf_cuda.h \
	intercept/exports_gen_cgo.go intercept/procs_gen.go intercept/procs_gen.c \
	gpu/cuda/syms_gen.h profiles/api/api.gen.go profiles/internal/apigen \
	transport/internal/wire/args_gen.go transport/internal/wire/calls_gen.go \
	transport/internal/wire/calls_gen_test.go intercept/nvml/unsupported_gen.c

.PHONY: all build run demo demo-pool test check fmt vet staticcheck lint-api web-vendor fuzz generate generate-check bench ptx image image-test gpu-test clean

all: build

## build: kerfd, kerf, kerf-bench (the benchmarks and the demo, which kerf
## bench and kerf demo run from beside kerf) and the shim, bin/libcuda.so.1,
## which is also the tenant's NVML: bin/libnvidia-ml.so.1 links to it
build:
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN)/ ./cmd/...
	$(GO) build -buildmode=c-shared -o $(BIN)/libcuda.so.1 ./intercept
	ln -sf libcuda.so.1 $(BIN)/libnvidia-ml.so.1

## run: start kerfd with the embedded defaults (state in ./state; the
## default bundle and admin token are copied to ~/.config/kerf for kerf)
run: build
	./$(BIN)/kerfd

## demo: a newcomer's tour — tenants on the emulated GPU, re-sliced 20 → 10 → mixed
demo: build
	./$(BIN)/kerf demo

## demo-pool: three kerfd on loopback as one pool; tenants run on every
## member, one member is killed, the pool goes on (docs/pool.md); needs gcc
## for the tenants' programs (intercept/testdata)
demo-pool: build
	gcc -Iabi/include -Iintercept/testdata -o $(BIN)/spin intercept/testdata/spin.c -L$(BIN) -l:libcuda.so.1
	gcc -Iabi/include -Iintercept/testdata -o $(BIN)/vadd intercept/testdata/vadd.c -L$(BIN) -l:libcuda.so.1
	./$(BIN)/kerf-bench demo-pool --spin $(BIN)/spin --short "$(BIN)/vadd gpu/emu/kernels/vadd.ptx"

## test: the whole test suite, with the race detector
test:
	$(GO) test -race -shuffle=on -timeout 30m ./...

## check: formatting, vet, staticcheck, generated files, the OpenAPI lint,
## tests and a short fuzz
check: fmt vet staticcheck generate-check lint-api test fuzz

fmt:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...

staticcheck:
	$(GO) run $(STATICCHECK) ./...

## lint-api: Spectral's OpenAPI rules (.spectral.yaml) over the operator
## API's document; a warning fails it too
lint-api: $(SPECTRAL)
	$(SPECTRAL) lint --ruleset .spectral.yaml --fail-severity=warn profiles/openapi.yaml

$(SPECTRAL):
	npm install --prefix .tools/spectral-$(SPECTRAL_VERSION) --no-audit --no-fund --save-exact @stoplight/spectral-cli@$(SPECTRAL_VERSION)

## web-vendor: refetch uPlot $(UPLOT_VERSION) from the npm registry, check
## the package's sha256, and copy its script, style sheet and LICENSE into
## $(UPLOT_DIR), where SHA256SUMS must still hold
web-vendor:
	rm -rf .tools/uplot && mkdir -p .tools/uplot
	cd .tools/uplot && npm pack --silent uplot@$(UPLOT_VERSION) >/dev/null
	echo "$(UPLOT_SHA256)  .tools/uplot/uplot-$(UPLOT_VERSION).tgz" | sha256sum -c -
	tar -xzf .tools/uplot/uplot-$(UPLOT_VERSION).tgz -C .tools/uplot
	cp .tools/uplot/package/LICENSE .tools/uplot/package/dist/uPlot.iife.min.js .tools/uplot/package/dist/uPlot.min.css $(UPLOT_DIR)/
	cd $(UPLOT_DIR) && sha256sum -c SHA256SUMS

## fuzz: every Fuzz target for FUZZTIME each
fuzz:
	FUZZTIME=$(FUZZTIME) ./scripts/fuzz.sh

generate:
	$(GO) generate ./...

generate-check: generate
	@git diff --exit-code -- $(GENERATED) || (echo "generated files are stale: run make generate"; exit 1)

## bench: the benchmarks recorded in docs/benchmarks.md (bench/, run by
## bin/kerf-bench through kerf bench)
bench: build
	./$(BIN)/kerf bench transport
	./$(BIN)/kerf bench emu
	./$(BIN)/kerf bench intercept
	./$(BIN)/kerf bench runtime
	./$(BIN)/kerf bench slicer
	./$(BIN)/kerf bench shares
	./$(BIN)/kerf bench ingest
	./$(BIN)/kerf bench pool

## ptx: regenerate the emulator's test kernels (needs clang)
ptx:
	./scripts/gen-ptx.sh

## image: the flashable appliance image, _build/image/kerf.img (root; see docs/image.md)
image: build
	./image/build.sh

## image-test: boot the image in qemu (TCG) and check it from the host; ~10 min
image-test:
	./image/test.sh

## gpu-test: the GPU validation suite, on a GPU machine (docs/gpu-validation.md)
gpu-test:
	./scripts/gpu-test.sh

clean:
	rm -rf $(BIN) _build
