#!/usr/bin/env bash
# Installs what the integration and e2e tests run for real: containerd, runc, the CNCF
# distribution registry, skopeo and openssl (Debian packages). Idempotent; root only.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
need=()
command -v containerd >/dev/null || need+=(containerd)
command -v runc >/dev/null || need+=(runc)
command -v docker-registry >/dev/null || need+=(docker-registry)
command -v skopeo >/dev/null || need+=(skopeo)
command -v openssl >/dev/null || need+=(openssl)
here="$(cd "$(dirname "$0")" && pwd)"
if [ ${#need[@]} -eq 0 ]; then
  echo "test environment: containerd, runc, docker-registry, skopeo, openssl already installed"
  # containerd 1.7 and 2.1 for the runtime matrix (Debian packages, unpacked into a cache).
  exec bash "$here/install-containerd.sh"
fi
if [ "$(id -u)" != 0 ]; then
  echo "test environment: missing ${need[*]}; install them as root (apt-get install ${need[*]})" >&2
  exit 1
fi
echo "test environment: installing ${need[*]}"
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
for c in containerd runc docker-registry skopeo openssl; do
  command -v "$c" >/dev/null || { echo "test environment: $c still missing after apt-get install" >&2; exit 1; }
done
echo "test environment: installed ${need[*]}"
exec bash "$here/install-containerd.sh"
