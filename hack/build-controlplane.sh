#!/usr/bin/env bash
# Builds the test control plane (kube-apiserver, kube-controller-manager,
# kubectl, etcd) from the Go module proxy and caches the binaries per version.
# Prints the directory that holds them on its last line.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/k8s-binaries" && pwd)"

if ! command -v go >/dev/null 2>&1; then
  echo "build-controlplane: no Go toolchain on PATH. Install Go >= 1.26 (https://go.dev/doc/install, or 'apt-get install golang' where it is new enough) and run again." >&2
  exit 1
fi

# The versions come from go.mod so that the cache key cannot drift from what is built.
versions="$(cd "$here" && go list -m -f '{{.Version}}' k8s.io/kubernetes go.etcd.io/etcd/server/v3)" || {
  echo "build-controlplane: 'go list -m' failed in $here: is the Go module proxy reachable (GOPROXY=$(go env GOPROXY))?" >&2
  exit 1
}
k8s_version="$(sed -n 1p <<<"$versions")"
etcd_version="$(sed -n 2p <<<"$versions")"
if [[ -z "$k8s_version" || -z "$etcd_version" ]]; then
  echo "build-controlplane: cannot read the k8s.io/kubernetes and etcd versions from $here/go.mod" >&2
  exit 1
fi
minor="$(echo "$k8s_version" | cut -d. -f2)"

cache_root="${HA_OPERATOR_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ha-operator}"
out="$cache_root/controlplane/kubernetes-$k8s_version-etcd-$etcd_version"
binaries=(kube-apiserver kube-controller-manager kubectl etcd)

complete=1
for b in "${binaries[@]}"; do [[ -x "$out/$b" ]] || complete=0; done
if [[ "$complete" == 1 ]]; then
  echo "build-controlplane: cached in $out" >&2
  echo "$out"
  exit 0
fi

echo "build-controlplane: building Kubernetes $k8s_version and etcd $etcd_version into $out (a cold build takes several minutes)" >&2
tmp="$out.partial.$$"
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp"

version_flags=""
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  version_flags+=" -X $pkg.gitVersion=$k8s_version -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor -X $pkg.gitTreeState=clean"
done

start=$(date +%s)
cd "$here"
export CGO_ENABLED=0
go build -trimpath -ldflags "-s -w $version_flags" -o "$tmp/" \
  k8s.io/kubernetes/cmd/kube-apiserver \
  k8s.io/kubernetes/cmd/kube-controller-manager \
  k8s.io/kubernetes/cmd/kubectl
go build -trimpath -ldflags "-s -w" -o "$tmp/etcd" go.etcd.io/etcd/server/v3

# Publish all four binaries at once so an interrupted build never looks cached.
rm -rf "$out"
mv "$tmp" "$out"
trap - EXIT
echo "build-controlplane: built in $(( $(date +%s) - start )) s" >&2
echo "$out"
