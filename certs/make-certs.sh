#!/usr/bin/env bash
# Makes a CA and a serving certificate for the webhook Service, for clusters without
# cert-manager and for tests. Prints the base64 caBundle for the MutatingWebhookConfiguration.
#
#   certs/make-certs.sh --out DIR [--service pulltrace-webhook] [--namespace pulltrace]
#                       [--san DNS:name | --san IP:127.0.0.1 ...] [--days 365] [--ca-dir DIR]
#
# Writes DIR/ca.crt, DIR/ca.key, DIR/tls.crt, DIR/tls.key (keys mode 0600). With --ca-dir, an
# existing CA there (ca.crt + ca.key) signs the new certificate instead of a new CA: that is
# how tests rotate the serving certificate under the same caBundle.
set -euo pipefail

service=pulltrace-webhook
namespace=pulltrace
out=
ca_dir=
days=365
sans=()

usage() { sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; }
while [ $# -gt 0 ]; do
  case "$1" in
    --service) service=${2:?--service needs a value}; shift 2 ;;
    --namespace) namespace=${2:?--namespace needs a value}; shift 2 ;;
    --out) out=${2:?--out needs a value}; shift 2 ;;
    --ca-dir) ca_dir=${2:?--ca-dir needs a value}; shift 2 ;;
    --days) days=${2:?--days needs a value}; shift 2 ;;
    --san) sans+=("${2:?--san needs a value}"); shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "make-certs: unknown argument: $1" >&2; usage >&2; exit 2 ;;
  esac
done
[ -n "$out" ] || { echo "make-certs: --out DIR is required" >&2; exit 2; }
[[ "$days" =~ ^[0-9]+$ ]] || { echo "make-certs: --days must be a whole number" >&2; exit 2; }
for s in "${sans[@]+"${sans[@]}"}"; do
  [[ "$s" =~ ^(DNS|IP):[A-Za-z0-9.:*-]+$ ]] || { echo "make-certs: --san must be DNS:name or IP:addr, got $s" >&2; exit 2; }
done
command -v openssl >/dev/null || { echo "make-certs: openssl is not installed (apt-get install -y openssl)" >&2; exit 1; }

mkdir -p "$out"
umask 077
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

if [ -n "$ca_dir" ]; then
  [ -f "$ca_dir/ca.crt" ] && [ -f "$ca_dir/ca.key" ] || { echo "make-certs: $ca_dir has no ca.crt and ca.key" >&2; exit 1; }
  if [ "$(cd "$ca_dir" && pwd)" != "$(cd "$out" && pwd)" ]; then
    cp "$ca_dir/ca.crt" "$ca_dir/ca.key" "$out/"
  fi
else
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -keyout "$out/ca.key" -out "$out/ca.crt" -days "$days" \
    -subj "/CN=pulltrace-webhook-ca" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
fi

dns="$service.$namespace.svc"
san_list="DNS:$service,DNS:$service.$namespace,DNS:$dns,DNS:$dns.cluster.local"
for s in "${sans[@]+"${sans[@]}"}"; do san_list="$san_list,$s"; done
cat > "$tmp/ext.cnf" <<CNF
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=$san_list
CNF

openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
  -keyout "$tmp/tls.key" -out "$tmp/tls.csr" -subj "/CN=$dns" 2>/dev/null
openssl x509 -req -in "$tmp/tls.csr" -CA "$out/ca.crt" -CAkey "$out/ca.key" -CAcreateserial \
  -CAserial "$tmp/ca.srl" -out "$tmp/tls.crt" -days "$days" -extfile "$tmp/ext.cnf" 2>/dev/null
# Replace atomically so a process watching the files never reads half a certificate.
mv -f "$tmp/tls.key" "$out/tls.key.new" && mv -f "$tmp/tls.crt" "$out/tls.crt.new"
mv -f "$out/tls.key.new" "$out/tls.key" && mv -f "$out/tls.crt.new" "$out/tls.crt"
chmod 0644 "$out/ca.crt" "$out/tls.crt"

base64 -w0 < "$out/ca.crt"
echo
