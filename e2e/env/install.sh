#!/usr/bin/env bash
# Installs what the integration and e2e tests run for real: containerd, runc, the CNCF
# distribution registry, skopeo, openssl and the CNI plugins (Debian packages), containerd 1.7
# and 2.1 (install-containerd.sh), and the Kubernetes parts and helm (build-kube.sh; the first
# build takes ~12 min on 2 cores, cached after). Idempotent; root only.

set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
need=()
command -v containerd >/dev/null || need+=(containerd)
command -v runc >/dev/null || need+=(runc)
command -v docker-registry >/dev/null || need+=(docker-registry)
command -v skopeo >/dev/null || need+=(skopeo)
command -v openssl >/dev/null || need+=(openssl)
# CNI plugins (ptp, host-local) for the real kubelet's pod network (e2e/cluster/kubelet.ts).
[ -x /usr/lib/cni/ptp ] || need+=(containernetworking-plugins)
here="$(cd "$(dirname "$0")" && pwd)"
if [ ${#need[@]} -eq 0 ]; then
  echo "test environment: containerd, runc, docker-registry, skopeo, openssl, CNI plugins already installed"
  # containerd 1.7 and 2.1 for the runtime matrix (Debian packages, unpacked into a cache),
  # then the real Kubernetes parts and helm, built from Go modules (cached after the first run).
  bash "$here/install-containerd.sh"
  bash "$here/build-kube.sh"
  exec bash "$here/build-cert-manager.sh"
fi
if [ "$(id -u)" != 0 ]; then
  echo "test environment: missing ${need[*]}; install them as root (apt-get install ${need[*]})" >&2
  exit 1
fi
echo "test environment: installing ${need[*]}"
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
[ -x /usr/lib/cni/ptp ] || { echo "test environment: /usr/lib/cni/ptp still missing after apt-get install" >&2; exit 1; }
for c in containerd runc docker-registry skopeo openssl; do
  command -v "$c" >/dev/null || { echo "test environment: $c still missing after apt-get install" >&2; exit 1; }
done
echo "test environment: installed ${need[*]}"
bash "$here/install-containerd.sh"
bash "$here/build-kube.sh"
exec bash "$here/build-cert-manager.sh"
