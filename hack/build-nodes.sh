#!/usr/bin/env bash
# Builds what a real node of the test cluster runs — kubelet, kube-proxy and
# kube-scheduler from the same Kubernetes module as the control plane
# (hack/k8s-binaries), containerd, its runc shim and ctr from their own module
# (hack/containerd-binaries: containerd wants k8s.io/* v0.37, which would fight
# the control plane's v0.36 pins) — from the Go module proxy, and caches them
# per version. runc and the CNI plugins come from Debian (make system-deps).
# Prints the directory that holds them on its last line.
set -euo pipefail

hack="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
k8s_dir="$hack/k8s-binaries"
ctd_dir="$hack/containerd-binaries"
# shellcheck source=lib/go-build.sh
source "$hack/lib/go-build.sh"

require_go build-nodes
k8s_version="$(module_version build-nodes "$k8s_dir" k8s.io/kubernetes)"
ctd_version="$(module_version build-nodes "$ctd_dir" github.com/containerd/containerd/v2)"

out="$(cache_dir "nodes/kubernetes-$k8s_version-containerd-$ctd_version")"
binaries=(kubelet kube-proxy kube-scheduler containerd containerd-shim-runc-v2 ctr)
exit_if_cached build-nodes "$out" "${binaries[@]}"

echo "build-nodes: building kubelet, kube-proxy, kube-scheduler $k8s_version and containerd $ctd_version into $out (a cold build takes several minutes)" >&2
tmp="$out.partial.$$"
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp"
start=$(date +%s)
export CGO_ENABLED=0

(cd "$k8s_dir" && go build -trimpath -ldflags "-s -w $(k8s_version_flags "$k8s_version")" -o "$tmp/" \
  k8s.io/kubernetes/cmd/kubelet \
  k8s.io/kubernetes/cmd/kube-proxy \
  k8s.io/kubernetes/cmd/kube-scheduler)

# no_btrfs: the btrfs snapshotter needs cgo and headers; the nodes use overlayfs.
(cd "$ctd_dir" && go build -trimpath -tags no_btrfs \
  -ldflags "-s -w -X github.com/containerd/containerd/v2/version.Version=$ctd_version" -o "$tmp/" \
  github.com/containerd/containerd/v2/cmd/containerd \
  github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2 \
  github.com/containerd/containerd/v2/cmd/ctr)

publish build-nodes "$tmp" "$out" "$start"
