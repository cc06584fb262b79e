# ocireg-tool — `make help` lists the targets.
SHELL := /bin/bash
GO ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X github.com/ocireg-tool/ocireg-tool/internal/buildinfo.Version=$(VERSION)
# amd64: the text segment starts 4 KiB past a 2 MiB boundary (the default
# is on one). A kernel that caches the binary in large folios (ext4 since
# 6.x) then maps only the pages the tool touches rather than whole 2 MiB
# folios, which counted ~12 MiB more in every process's RSS (idle server
# 44 MiB instead of 32; see BENCHMARKS.md, idle server RSS).
ifeq ($(shell $(GO) env GOARCH),amd64)
LDFLAGS += -T 0x402000
endif
BIN := build/ocireg-tool
export CGO_ENABLED := 0

.PHONY: help build test run lint deps bench fuzz clean stop layer-gomods layer-bitbake layer-check

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-8s %s\n", $$1, $$2}'

build: ## Build the static binary into build/
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/ocireg-tool

# The real-bitbake layer test runs on its own, verbosely, so that the log
# shows each of its subtests and bitbake's summary lines.
LAYER_TEST := $(GO) test -count=1 -timeout 20m -v -run '^TestBitbake$$' ./tests/
# oe-core's yocto-check-layer on meta-layer, the same way: each test case's
# verdict in the log. Each placement of the layer costs three parses of
# oe-core's world and four signature dumps of its tasks (11 to 14 minutes a
# placement on 2 cores), so `make test` runs the placement users meet first,
# the layer copied out of any git checkout; `make layer-check` runs both.
LAYER_CHECK := OCIREG_TOOL_LAYER_CHECK=1 $(GO) test -count=1 -timeout 90m -v -run '^TestYoctoCheckLayer$$' ./tests/

test: deps ## Install test dependencies, then lint and run every test
	$(MAKE) lint
	$(GO) test -count=1 -timeout 30m -skip '^(TestBitbake|TestYoctoCheckLayer)$$' ./...
	$(LAYER_TEST)
	LAYER_CHECK_PLACEMENTS=copied $(LAYER_CHECK)

run: build ## The main job on the example: sample deploy tree, generate, start, push, list
	$(BIN) sample-deploy --dest build/example/tmp/deploy/images
	@echo
	$(BIN) generate --env-dump examples/local.env
	@echo
	build/example/container-registry/container-registry.sh start
	@echo
	build/example/container-registry/container-registry.sh push
	@echo
	build/example/container-registry/container-registry.sh list
	@echo
	@echo "The registry keeps running. Stop it with:"
	@echo "  build/example/container-registry/container-registry.sh stop   (or: make stop)"
	@echo "More: build/example/container-registry/container-registry.sh help"

# The second vet checks the build the end-to-end tests run: the files
# behind the ocireg_testhooks build tag (*_testhooks.go; their release
# twins are *_release.go).
lint: ## gofmt check and go vet, of the release build and of the test-hooks build
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) vet -tags ocireg_testhooks ./...

# command:package pairs `deps` installs when the command is missing: the
# registry clients the tests use (docker-registry: distribution 2.8, a
# registry without the referrers API, for the attach fallback tests),
# chromium for the browser tests, and the host tools bitbake's HOSTTOOLS
# and the layer tests need (fakeroot runs do_install; wget is the gomod://
# fetcher's downloader).
DEPS_COMMANDS := skopeo:skopeo curl:curl openssl:openssl podman:podman \
	chrpath:chrpath cpio:cpio diffstat:diffstat gawk:gawk lz4:lz4 zstd:zstd pzstd:zstd \
	file:file wget:wget rpcgen:rpcgen fakeroot:fakeroot xz:xz-utils bzip2:bzip2 \
	git:git patch:patch perl:perl g++:g++ make:make python3:python3 locale-gen:locales \
	tar:tar gzip:gzip bash:bash redis-server:redis-server docker-registry:docker-registry chromium:chromium

deps: ## Install what the tests need (Debian, as root; apt-get only when missing; SeaweedFS built once per machine)
	@missing=""; \
	for p in $(DEPS_COMMANDS); do \
	  command -v $${p%%:*} >/dev/null 2>&1 || case " $$missing " in *" $${p#*:} "*) ;; *) missing="$$missing $${p#*:}";; esac; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  export DEBIAN_FRONTEND=noninteractive; \
	  apt-get update -qq && apt-get install -y -qq --no-install-recommends $$missing; \
	fi
	@# bitbake refuses to start without the en_US.UTF-8 locale.
	@if ! locale -a 2>/dev/null | grep -qix 'en_US\.utf-\?8'; then \
	  echo "generating the en_US.UTF-8 locale"; \
	  grep -qx 'en_US.UTF-8 UTF-8' /etc/locale.gen 2>/dev/null || echo 'en_US.UTF-8 UTF-8' >> /etc/locale.gen; \
	  locale-gen >/dev/null; \
	fi
	@# The S3 engine of the shared-storage tests, built once per machine.
	@tests/seaweedfs.sh build

FUZZTIME ?= 5m
fuzz: ## Run every fuzz target for FUZZTIME (default 5m) each
	@for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
	    echo "== $$pkg $$f ($(FUZZTIME))"; \
	    $(GO) test $$pkg -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) || exit 1; \
	  done; \
	done

BENCHFLAGS ?=
bench: build deps ## Side-by-side benchmarks, writes BENCHMARKS.md (not in CI; BENCHFLAGS=-h for options)
	@missing=""; \
	[ -x /usr/bin/docker-registry ] || missing="$$missing docker-registry"; \
	command -v hyperfine >/dev/null 2>&1 || missing="$$missing hyperfine"; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  export DEBIAN_FRONTEND=noninteractive; \
	  apt-get update -qq && apt-get install -y -qq --no-install-recommends $$missing; \
	fi
	$(GO) run ./tests/bench -tool $(BIN) -out BENCHMARKS.md $(BENCHFLAGS)

stop: ## Stop the registry `make run` started
	@if [ -x build/example/container-registry/container-registry.sh ]; then build/example/container-registry/container-registry.sh stop; else echo "Registry not running"; fi

clean: ## Remove build output
	rm -rf build

layer-gomods: ## Regenerate the tool recipe's Go module includes (OECORE_DIR= to identify new licenses)
	$(GO) run ./meta-layer/tools/gomods -recipe-dir meta-layer/recipes-containers/ocireg-tool

layer-bitbake: deps ## Run the real-bitbake layer test as `make test` does (snapshot in ../shared/yocto, or BITBAKE_DIR/OECORE_DIR)
	$(LAYER_TEST)

layer-check: deps ## Run yocto-check-layer on the layer copied out of the checkout and in place (`make test` runs the copy)
	$(LAYER_CHECK)
