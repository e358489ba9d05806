#!/usr/bin/env bash
# Builds the pause image's program (main.go beside this script) as a static
# binary and caches it under a hash of what makes it: the Go version, go.mod,
# main.go and this script (its build flags). Prints the directory that holds
# the binary on its last line, like the other build scripts.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=../../lib/go-build.sh
source "$here/../../lib/go-build.sh"

require_go build-pause
key="$( (go env GOVERSION && cat "$here/go.mod" "$here/main.go" "${BASH_SOURCE[0]}") | sha256sum | cut -c1-16)"
out="$(cache_dir "images/pause-$key")"
exit_if_cached build-pause "$out" pause

tmp="$out.partial.$$"
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp"
start=$(date +%s)
(cd "$here" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$tmp/pause" .)
publish build-pause "$tmp" "$out" "$start"
