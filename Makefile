# Petrel build targets. `make demo` runs the main job, `make test` all tests.
GO ?= go
BIN := bin

.PHONY: build test test-unit lab bench proto demo vet fmt clean package release

build:
	GO=$(GO) bash scripts/build.sh $(abspath $(BIN))

# .deb packages of petrel and petrel-server in dist/ (docs/deployment.md).
package:
	GO=$(GO) bash scripts/package.sh dist

# Cross-built binaries for every platform in bin/release/ (docs/platforms.md).
release:
	GO=$(GO) bash scripts/release.sh $(abspath $(BIN))/release

vet:
	$(GO) vet ./...

fmt:
	gofmt -l -w .

# The whole suite: unit + in-process integration (+ PostgreSQL and lab tiers when
# run through .ci/run, which starts PostgreSQL and runs as root).
test:
	bash scripts/test.sh

lab:
	bash scripts/lab.sh

bench:
	bash scripts/bench.sh

proto:
	bash scripts/proto.sh

demo:
	bash scripts/demo.sh

clean:
	rm -rf $(BIN) .bin .demo dist
