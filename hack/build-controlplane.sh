#!/usr/bin/env bash
# Builds the test control plane (kube-apiserver, kube-controller-manager,
# kubectl, etcd) from the Go module proxy and caches the binaries per version.
# Prints the directory that holds them on its last line.
set -euo pipefail

hack="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
here="$hack/k8s-binaries"
# shellcheck source=lib/go-build.sh
source "$hack/lib/go-build.sh"

require_go build-controlplane
k8s_version="$(module_version build-controlplane "$here" k8s.io/kubernetes)"
etcd_version="$(module_version build-controlplane "$here" go.etcd.io/etcd/server/v3)"

out="$(cache_dir "controlplane/kubernetes-$k8s_version-etcd-$etcd_version")"
binaries=(kube-apiserver kube-controller-manager kubectl etcd)
exit_if_cached build-controlplane "$out" "${binaries[@]}"

echo "build-controlplane: building Kubernetes $k8s_version and etcd $etcd_version into $out (a cold build takes several minutes)" >&2
tmp="$out.partial.$$"
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp"

start=$(date +%s)
cd "$here"
export CGO_ENABLED=0
go build -trimpath -ldflags "-s -w $(k8s_version_flags "$k8s_version")" -o "$tmp/" \
  k8s.io/kubernetes/cmd/kube-apiserver \
  k8s.io/kubernetes/cmd/kube-controller-manager \
  k8s.io/kubernetes/cmd/kubectl
go build -trimpath -ldflags "-s -w" -o "$tmp/etcd" go.etcd.io/etcd/server/v3

publish build-controlplane "$tmp" "$out" "$start"
