#!/usr/bin/env bash
# Builds the real Kubernetes parts the sandbox and the e2e suite run, from Go modules, once:
# kube-apiserver, kube-controller-manager, kube-scheduler and kubelet from k8s.io/kubernetes,
# etcd from go.etcd.io/etcd/server/v3, helm from helm.sh/helm/v3. Cached outside the repo
# (PULLTRACE_CACHE, default ~/.cache/pulltrace); a second run finds the stamp and returns at once.
# Progress goes to stdout, each build's full log to $cache/logs/.
#
# Why a module of our own: k8s.io/kubernetes is not meant to be `go install`ed; its go.mod
# replaces every k8s.io staging module with ./staging/..., so the module that builds it must
# pin each of them to the matching v0.x release instead (the list is read from its go.mod).
set -euo pipefail

KUBE_VERSION="${PULLTRACE_KUBE_VERSION:-v1.34.4}"
ETCD_VERSION="${PULLTRACE_ETCD_VERSION:-v3.6.16}"
HELM_VERSION="${PULLTRACE_HELM_VERSION:-v3.22.0}"
cache="${PULLTRACE_CACHE:-$HOME/.cache/pulltrace}"
out="$cache/kube-$KUBE_VERSION"
bin="$out/bin"
logs="$cache/logs"
stamp="$out/.built-etcd-$ETCD_VERSION-helm-$HELM_VERSION"
mkdir -p "$bin" "$logs"

if [ -f "$stamp" ]; then
  echo "kubernetes parts: cached in $bin"
  exit 0
fi
[ -x /usr/local/go/bin/go ] && PATH="/usr/local/go/bin:$PATH"
command -v go >/dev/null || { echo "kubernetes parts: Go is missing (expected /usr/local/go/bin/go)" >&2; exit 1; }
export GOFLAGS="${GOFLAGS:-} -trimpath"
start=$(date +%s)
step() { echo "kubernetes parts: [$(($(date +%s) - start))s] $*"; }

# --- Kubernetes components -------------------------------------------------------------
minor="${KUBE_VERSION#v1.}"; minor="${minor%%.*}"
staging_version="v0.${KUBE_VERSION#v1.}"
mod="$out/src/kubernetes"
mkdir -p "$mod"
if [ ! -x "$bin/kube-apiserver" ] || [ ! -x "$bin/kubelet" ]; then
  step "resolving k8s.io/kubernetes@$KUBE_VERSION"
  gomod=$(go mod download -json "k8s.io/kubernetes@$KUBE_VERSION" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
  [ -f "$gomod" ] || { echo "kubernetes parts: go mod download k8s.io/kubernetes@$KUBE_VERSION failed" >&2; exit 1; }
  {
    echo "module pulltrace.local/kube"
    echo
    echo "go 1.24.0"
    echo
    echo "require k8s.io/kubernetes $KUBE_VERSION"
    echo
    grep -E '^\s*k8s\.io/[a-z0-9-]+ => \./staging/' "$gomod" | awk -v v="$staging_version" '{print "replace " $1 " => " $1 " " v}'
  } >"$mod/go.mod"
  cat >"$mod/tools.go" <<'EOF'
//go:build tools

package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubelet"
)
EOF
  step "go mod tidy (downloads the modules; log: $logs/kube-mod.log)"
  (cd "$mod" && go mod tidy -e >"$logs/kube-mod.log" 2>&1) || { tail -20 "$logs/kube-mod.log" >&2; exit 1; }
  v="k8s.io/component-base/version"
  cv="k8s.io/client-go/pkg/version"
  ldflags="-s -w"
  for p in "$v" "$cv"; do
    ldflags="$ldflags -X $p.gitVersion=$KUBE_VERSION -X $p.gitMajor=1 -X $p.gitMinor=$minor -X $p.gitTreeState=clean -X $p.buildDate=1970-01-01T00:00:00Z"
  done
  for c in kube-apiserver kube-controller-manager kube-scheduler kubelet; do
    if [ -x "$bin/$c" ]; then continue; fi
    step "building $c (log: $logs/$c.log)"
    (cd "$mod" && go build -tags tools -ldflags "$ldflags" -o "$bin/$c.tmp" "k8s.io/kubernetes/cmd/$c" >"$logs/$c.log" 2>&1) ||
      { tail -30 "$logs/$c.log" >&2; exit 1; }
    mv "$bin/$c.tmp" "$bin/$c"
  done
fi

# --- etcd --------------------------------------------------------------------------------
if [ ! -x "$bin/etcd" ]; then
  emod="$out/src/etcd"
  mkdir -p "$emod"
  cat >"$emod/main.go" <<'EOF'
// The etcd server, as its own command: etcdmain is the package etcd's binary runs.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
EOF
  printf 'module pulltrace.local/etcd\n\ngo 1.24.0\n\nrequire go.etcd.io/etcd/server/v3 %s\n' "$ETCD_VERSION" >"$emod/go.mod"
  step "building etcd $ETCD_VERSION (log: $logs/etcd.log)"
  (cd "$emod" && go mod tidy >"$logs/etcd.log" 2>&1 && go build -ldflags "-s -w" -o "$bin/etcd.tmp" . >>"$logs/etcd.log" 2>&1) ||
    { tail -30 "$logs/etcd.log" >&2; exit 1; }
  mv "$bin/etcd.tmp" "$bin/etcd"
fi

# --- helm --------------------------------------------------------------------------------
if [ ! -x "$bin/helm" ]; then
  step "building helm $HELM_VERSION (log: $logs/helm.log)"
  (GOBIN="$bin" go install -ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION" \
    "helm.sh/helm/v3/cmd/helm@$HELM_VERSION" >"$logs/helm.log" 2>&1) || { tail -30 "$logs/helm.log" >&2; exit 1; }
fi

touch "$stamp"
step "done: $(ls "$bin" | tr '\n' ' ')"
