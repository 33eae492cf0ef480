#!/usr/bin/env bash
# Installs the pinned tools Gatehouse needs, built from Go modules, into a cache
# outside the clone, and links them into the git-ignored .tools/ folder.
#
#   scripts/tools.sh            opa + test bed (kube-apiserver, etcd)
#   scripts/tools.sh opa        only the OPA CLI
#   scripts/tools.sh testbed    only kube-apiserver, etcd and the stand-in kubelet
#   scripts/tools.sh helm       Helm 3 (the chart's tests; not needed to run the gateway)
#   scripts/tools.sh mcp-go-client   the Go SDK's MCP client (the MCP tests' second client)
#   scripts/tools.sh regal      the Rego linter (opt-in: the module proxy here refuses it)
#
# A warm cache makes every step a few stat calls. Builds go to a temporary
# folder and are renamed into place, so an interrupted build never leaves a
# half-written binary that later runs would trust.
set -euo pipefail

OPA_VERSION=v1.22.2
REGAL_VERSION=v0.36.1
K8S_VERSION=v1.35.4
ETCD_VERSION=v3.6.5
HELM_VERSION=v3.22.0

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cache=${GATEHOUSE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/gatehouse}
links="$root/.tools"

say() { printf 'tools: %s\n' "$*" >&2; }

need_go() {
  if ! command -v go >/dev/null 2>&1; then
    say "Go is not installed: install Go 1.25 or newer (https://go.dev/doc/install) and put 'go' on PATH, then run this again."
    exit 1
  fi
}

# link NAME TARGET: .tools/NAME -> TARGET (relinked every run, so switching
# versions only needs the pin above to change).
link() {
  mkdir -p "$links"
  ln -sfn "$2" "$links/$1"
}

# cached NAME DIR BUILD...: unless DIR/bin/NAME exists, runs BUILD with a temporary
# output folder as its last argument and moves the result to DIR; then links NAME.
cached() {
  local name=$1 dir=$2
  shift 2
  if [[ ! -x "$dir/bin/$name" ]]; then
    need_go
    say "building $name (first run only; cached in $dir)"
    local tmp
    tmp=$(mktemp -d "$cache/.build-$name.XXXXXX")
    "$@" "$tmp/bin"
    rm -rf "$dir"
    mv "$tmp" "$dir"
  fi
  link "$name" "$dir/bin/$name"
}

# go_install NAME MODULE VERSION: `go install MODULE@VERSION` into the cache.
go_install_into() { GOBIN="$2" GOFLAGS=-trimpath go install -ldflags='-s -w' "$1"; }
go_install() { cached "$1" "$cache/$1-$3" go_install_into "$2@$3"; }

# The test bed module pins both binaries; its go.mod/go.sum hash is part of
# the cache key so that changing a pin rebuilds and never reuses a stale binary.
testbed() {
  # Stamp the real version: clients read it from /version (kubectl version, skew checks).
  local v=k8s.io/component-base/version
  local minor=${K8S_VERSION#v1.}; minor=${minor%%.*}
  local ldflags="-s -w -X $v.gitVersion=$K8S_VERSION -X $v.gitMajor=1 -X $v.gitMinor=$minor -X $v.gitTreeState=clean"
  local sum
  sum=$( (cat "$root/testbed/go.mod" "$root/testbed/go.sum" "$root"/testbed/kubelet/*.go; echo "$ldflags") | sha256sum | cut -c1-12)
  local dir="$cache/testbed-k8s$K8S_VERSION-etcd$ETCD_VERSION-$sum"
  if [[ ! -x "$dir/bin/kube-apiserver" || ! -x "$dir/bin/etcd" || ! -x "$dir/bin/kubelet" ]]; then
    need_go
    say "building kube-apiserver $K8S_VERSION and etcd $ETCD_VERSION (first run only, several minutes; cached in $dir)"
    local tmp
    tmp=$(mktemp -d "$cache/.build-testbed.XXXXXX")
    (cd "$root/testbed" && go build -mod=mod -trimpath -ldflags="$ldflags" -o "$tmp/bin/" \
      k8s.io/kubernetes/cmd/kube-apiserver go.etcd.io/etcd/server/v3 ./kubelet)
    # `go build` names the etcd main package after its path: .../server/v3 -> server.
    mv "$tmp/bin/server" "$tmp/bin/etcd"
    rm -rf "$dir"
    mv "$tmp" "$dir"
  fi
  link kube-apiserver "$dir/bin/kube-apiserver"
  link etcd "$dir/bin/etcd"
  link kubelet "$dir/bin/kubelet"
}

# The MCP tests' second client: test/mcp-go-client on the official Go SDK, keyed by its sources.
mcp_go_client_into() { (cd "$root/test/mcp-go-client" && go build -mod=mod -trimpath -ldflags='-s -w' -o "$1/mcp-go-client" .); }
mcp_go_client() {
  local src="$root/test/mcp-go-client" sum
  sum=$(cat "$src/go.mod" "$src/go.sum" "$src"/*.go | sha256sum | cut -c1-12)
  cached mcp-go-client "$cache/mcp-go-client-$sum" mcp_go_client_into
}

mkdir -p "$cache"
what=${1:-all}
case "$what" in
  opa) go_install opa github.com/open-policy-agent/opa "$OPA_VERSION" ;;
  regal) go_install regal github.com/open-policy-agent/regal "$REGAL_VERSION" ;;
  testbed) testbed ;;
  helm) go_install helm helm.sh/helm/v3/cmd/helm "$HELM_VERSION" ;;
  mcp-go-client) mcp_go_client ;;
  all)
    go_install opa github.com/open-policy-agent/opa "$OPA_VERSION"
    testbed
    ;;
  *) say "unknown tool '$what': expected one of opa, regal, testbed, helm, mcp-go-client, all"; exit 2 ;;
esac
