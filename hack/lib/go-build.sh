# Shared by hack/build-controlplane.sh and hack/build-nodes.sh: Go builds from
# the module proxy, cached per version. Source it; each function takes the
# calling script's name first, for its messages.

require_go() {
  command -v go >/dev/null 2>&1 && return 0
  echo "$1: no Go toolchain on PATH. Install Go >= 1.26 (https://go.dev/doc/install, or 'apt-get install golang' where it is new enough) and run again." >&2
  exit 1
}

# The version of a module as the go.mod in a directory pins it: the cache key cannot drift from what is built.
module_version() {
  local script=$1 dir=$2 module=$3 version
  version="$(cd "$dir" && go list -m -f '{{.Version}}' "$module")" || {
    echo "$script: 'go list -m $module' failed in $dir: is the Go module proxy reachable (GOPROXY=$(go env GOPROXY))?" >&2
    exit 1
  }
  if [[ -z "$version" ]]; then
    echo "$script: cannot read the version of $module from $dir/go.mod" >&2
    exit 1
  fi
  echo "$version"
}

# Where the binaries of one version go.
cache_dir() {
  echo "${HA_OPERATOR_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ha-operator}/$1"
}

# When every binary named is in the cache directory: says so, prints the directory, exits.
exit_if_cached() {
  local script=$1 out=$2 binary
  shift 2
  for binary in "$@"; do [[ -x "$out/$binary" ]] || return 0; done
  echo "$script: cached in $out" >&2
  echo "$out"
  exit 0
}

# Moves a finished build into the cache directory at once, so an interrupted one never looks cached.
publish() {
  local script=$1 tmp=$2 out=$3 started=$4
  rm -rf "$out"
  mv "$tmp" "$out"
  trap - EXIT
  echo "$script: built in $(( $(date +%s) - started )) s" >&2
  echo "$out"
}

# -ldflags that make Kubernetes binaries report their version (as its own build does).
k8s_version_flags() {
  local version=$1 minor flags="" pkg
  minor="$(echo "$version" | cut -d. -f2)"
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    flags+=" -X $pkg.gitVersion=$version -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor -X $pkg.gitTreeState=clean"
  done
  echo "$flags"
}
