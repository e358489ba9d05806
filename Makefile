# Every target runs with the project's own Node (24.x, from the npm package `node`)
# first on PATH: the machine's Node may be too old for @kubernetes/client-node 2.x.
SHELL := bash
.SHELLFLAGS := -euo pipefail -c
export PATH := $(CURDIR)/node_modules/.bin:$(PATH)

NODE_DEPS := node_modules/.installed
BENCHES := bench-queue bench-handover bench-convergence bench-cpu bench-resync bench-startup bench-memory bench-latency bench-crash-failover

.PHONY: help deps system-deps controlplane nodes build typecheck lint test test-unit test-integration \
        run cluster-up cluster-down clean crds grafana study study-nodes chaos bench new-kind remove-kind rename $(BENCHES)

help:
	@echo "make run           the HA demo: a local cluster of real nodes (as root), the manifests, sample Websites; Ctrl-C stops"
	@echo "make test          install everything, then typecheck, lint, unit and integration tests"
	@echo "make build         bundle the operator into dist/main.mjs (what the image runs)"
	@echo "make lint          eslint"
	@echo "make bench         every benchmark (~95 min, crash-failover as root; make bench-<name> for one): figures for docs/BENCHMARKS.md"
	@echo "make crds          regenerate crds/ from the schemas in src/"
	@echo "make new-kind      scaffold a kind: KIND=Backup OWNS=batch/v1/CronJob [GROUP=…] [KIND_VERSION=v1alpha1]"
	@echo "make remove-kind   take a kind out: KIND=Website"
	@echo "make rename        rename the project: NAME=backup-operator (labels, field manager, Leases, manifests, alerts)"
	@echo "make grafana       regenerate the dashboard and alert files"
	@echo "make study         the HA study: six disruptions under load (~7 min); report in study-results/<time>/"
	@echo "make study-nodes   the study on real nodes (as root): rollout, crash, node loss, through kubectl apply -k manifests/ (~13 min)"
	@echo "make chaos         random disruptions under load, judged by the audit log (DISRUPTIONS=100 per mode, ~25 min)"
	@echo "make nodes         what real nodes need: kubelet, kube-proxy, kube-scheduler, containerd (built, cached) and runc, CNI plugins, iptables, socat (Debian)"
	@echo "make cluster-up    start the local control plane in the background; prints KUBECONFIG (NODES=2: with real nodes, as root)"
	@echo "make cluster-down  stop it"
	@echo "make clean         remove build output (the cached control plane stays)"

$(NODE_DEPS): package.json package-lock.json
	npm ci --no-audit --no-fund
	@touch $@

# Debian packages the tests need that a fresh machine may lack: openssl for the
# control plane's certificates, prometheus for promtool and the dashboard proof,
# chromium to render the study's sample report (test/study/report-render.test.ts).
system-deps:
	@missing=""; command -v openssl >/dev/null || missing="$$missing openssl"; \
	command -v promtool >/dev/null || missing="$$missing prometheus"; \
	[ -x /usr/bin/chromium ] || missing="$$missing chromium"; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq --no-install-recommends $$missing; \
	  else sudo apt-get update -qq && sudo apt-get install -y -qq --no-install-recommends $$missing; fi; \
	fi

deps: $(NODE_DEPS) system-deps

controlplane:
	@bash hack/build-controlplane.sh >/dev/null

# What real nodes run (kubelet, kube-proxy, kube-scheduler, containerd + shim + ctr), from the Go
# module proxy, cached per version, and the Debian packages beside them: runc, the CNI plugins,
# iptables (kube-proxy), socat (the host's way to the apiserver), conntrack, and busybox-static
# (the local web image, hack/images/web.ts). Running nodes needs root (hack/cluster/).
nodes:
	@missing=""; for p in runc containernetworking-plugins iptables socat conntrack busybox-static; do \
	  dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq --no-install-recommends $$missing; \
	  else sudo apt-get update -qq && sudo apt-get install -y -qq --no-install-recommends $$missing; fi; \
	fi
	@bash hack/build-nodes.sh

# dist/main.mjs: src/main.ts and its dependencies bundled by esbuild (hack/build.ts says why).
build: $(NODE_DEPS)
	node hack/build.ts

# A new kind that owns one child kind, written into the project and registered (hack/scaffold/new-kind.ts);
# a kind taken out again (hack/scaffold/remove-kind.ts); the project renamed (hack/scaffold/rename.ts).
# README, "Copying it as a starter".
new-kind: $(NODE_DEPS)
	node hack/scaffold/new-kind.ts "$(KIND)" "$(OWNS)" "$(GROUP)" "$(KIND_VERSION)"

remove-kind: $(NODE_DEPS)
	node hack/scaffold/remove-kind.ts "$(KIND)"

rename: $(NODE_DEPS)
	node hack/scaffold/rename.ts "$(NAME)"

typecheck: $(NODE_DEPS)
	tsc -p tsconfig.json --noEmit

lint: $(NODE_DEPS)
	eslint .

test-unit: $(NODE_DEPS) system-deps
	mocha --config .mocharc.unit.json

# The second command fails the run if any process of a test plane or cluster (etcd, kube-apiserver, kubelet…) outlived it.
test-integration: deps controlplane nodes
	mocha --config .mocharc.integration.json
	@leftover="$$(pgrep -af "$${TMPDIR:-/tmp}/ha-operator-(plane|cluster)-" || true)"; \
	if [ -n "$$leftover" ]; then echo "processes left behind by the test planes:"; echo "$$leftover"; exit 1; fi

test: deps controlplane typecheck lint test-unit test-integration

# As root: a local cluster of real nodes running the manifests (hack/demo/nodes.ts). Not root, or
# ARGS=--processes: the replicas as processes on a local plane; with KUBECONFIG set (or
# ARGS=--kubeconfig=PATH) against that cluster instead.
run: deps controlplane
	@if [ "$$(id -u)" = 0 ] && [ -z "$${KUBECONFIG:-}" ]; then $(MAKE) --no-print-directory nodes; fi
	node hack/demo.ts $(ARGS)

# NODES=2: real nodes too (containerd, kubelet, kube-proxy; root), with the project's images loaded.
cluster-up: deps controlplane $(if $(NODES),nodes)
	node hack/controlplane/cli.ts up $(if $(NODES),--nodes=$(NODES))

cluster-down: $(NODE_DEPS)
	node hack/controlplane/cli.ts down

# Regenerates crds/ from the schemas in src/ (a test checks they are current).
crds: $(NODE_DEPS)
	node hack/crds.ts

# Regenerates grafana/ and alerts/prometheusrule.yaml from hack/grafana/ (a test checks they are current).
grafana: $(NODE_DEPS)
	node hack/grafana/generate.ts

# Each benchmark prints Markdown tables; docs/BENCHMARKS.md records them with the machine and the date.
# The ones with replicas run dist/main.mjs (what the image runs), rebuilt first. About 35 minutes in all.
bench: $(BENCHES)

bench-queue: $(NODE_DEPS)
	node hack/bench/queue.ts

bench-handover: deps controlplane
	node hack/bench/handover.ts 20

bench-convergence: deps controlplane
	node hack/bench/convergence.ts 1000 1,4,16

# This code's CPU per converged Website against the commit before issue 17's request layer, in the same run.
bench-cpu: deps controlplane
	node hack/bench/cpu.ts ffe2868 1000 3

bench-resync: deps controlplane
	node hack/bench/resync-writes.ts 200

bench-startup: deps controlplane
	node hack/bench/startup.ts 10

bench-memory: deps controlplane
	node hack/bench/memory.ts 1000,10000

bench-latency: deps controlplane
	node hack/bench/latency.ts 100 5 30 2
	node hack/bench/latency.ts 100 20 30 2
	node hack/bench/latency.ts 100 20 30 8
	node hack/bench/latency.ts 100 40 30 8

# Crash failover on real nodes (issue 16; root): SIGKILL, OOM kill, liveness-probe kill and loss of the
# leader's node, failover from the pod's status on and off in the same run. TRIALS per crash and mode
# (default 20: about 45 minutes on a 2-core machine).
bench-crash-failover: deps controlplane nodes
	node hack/bench/crash-failover.ts $(or $(TRIALS),20)

# The high-availability study (hack/study/): real replicas under load on a local plane, production
# lease timings, about 7 minutes. Writes study-results/<timestamp>/ (report.md, report.html,
# results.json, SVG charts); exits 1 if a check failed. ARGS=--timings=fast or ARGS=--only=2,4.
study: deps controlplane
	node hack/study/study.ts $(ARGS)

# The study's scenarios 7-11 on a local cluster of two real nodes (hack/study/nodes.ts; root): kubectl rollout restart,
# SIGKILL of the leader with and without failover from the pod's status, the leader's node lost with the default
# tolerations and with tolerationSeconds 30; about 13 minutes. ARGS=--into=docs/study puts them into the sample report.
study-nodes: deps controlplane nodes
	node hack/study/study.ts --nodes --only=7,8,9,10,11 $(ARGS)

# Random SIGTERM/SIGKILL, held/delayed/cut traffic and API server restarts under load, unsharded then
# sharded; the audit log judges (hack/chaos.ts). make test runs a short version (test/integration/chaos.test.ts).
DISRUPTIONS ?= 100
chaos: deps controlplane
	node hack/chaos.ts --disruptions $(DISRUPTIONS) $(ARGS)

clean:
	rm -rf dist .tmp
