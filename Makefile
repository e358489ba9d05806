# Every target runs with the project's own Node (24.x, from the npm package `node`)
# first on PATH: the machine's Node may be too old for @kubernetes/client-node 2.x.
SHELL := bash
.SHELLFLAGS := -euo pipefail -c
export PATH := $(CURDIR)/node_modules/.bin:$(PATH)

NODE_DEPS := node_modules/.installed

.PHONY: help deps system-deps controlplane build typecheck lint test test-unit test-integration \
        run cluster-up cluster-down clean

help:
	@echo "make run           start the local control plane (no cluster needed) and keep it up until Ctrl-C"
	@echo "make test          install everything, then typecheck, lint, unit and integration tests"
	@echo "make build         compile TypeScript to dist/"
	@echo "make lint          eslint"
	@echo "make cluster-up    start the local control plane in the background; prints KUBECONFIG"
	@echo "make cluster-down  stop it"
	@echo "make clean         remove build output (the cached control plane stays)"

$(NODE_DEPS): package.json package-lock.json
	npm ci --no-audit --no-fund
	@touch $@

# Debian packages the tests need that a fresh machine may lack.
system-deps:
	@missing=""; command -v openssl >/dev/null || missing="$$missing openssl"; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq $$missing; \
	  else sudo apt-get update -qq && sudo apt-get install -y -qq $$missing; fi; \
	fi

deps: $(NODE_DEPS) system-deps

controlplane:
	@bash hack/build-controlplane.sh >/dev/null

build: $(NODE_DEPS)
	tsc -p tsconfig.build.json

typecheck: $(NODE_DEPS)
	tsc -p tsconfig.json --noEmit

lint: $(NODE_DEPS)
	eslint .

test-unit: $(NODE_DEPS)
	mocha --config .mocharc.unit.json

# The second command fails the run if any etcd or kube-apiserver of a test plane outlived it.
test-integration: deps controlplane
	mocha --config .mocharc.integration.json
	@leftover="$$(pgrep -af "$${TMPDIR:-/tmp}/ha-operator-plane-" || true)"; \
	if [ -n "$$leftover" ]; then echo "processes left behind by the test planes:"; echo "$$leftover"; exit 1; fi

test: deps controlplane typecheck lint test-unit test-integration

run: deps controlplane
	node hack/controlplane/cli.ts run

cluster-up: deps controlplane
	node hack/controlplane/cli.ts up

cluster-down: $(NODE_DEPS)
	node hack/controlplane/cli.ts down

clean:
	rm -rf dist .tmp
