#!/usr/bin/env bash
# Fetches the newer containerd releases the integration tests run besides the system's 1.6
# (Debian bookworm): 1.7 from Debian trixie and 2.1 from Debian sid, as Debian packages
# unpacked into a cache (PULLTRACE_CACHE, default ~/.cache/pulltrace), never installed. It
# leaves the system's apt sources, lists and packages alone: each suite gets its own sources
# list and lists dir, and `apt-get download` + `dpkg -x` only write into the cache.
# Idempotent: a second run finds the binaries and returns at once. Prints where they are.
#
# runc is not fetched: image pulls (CRI PullImage, unpack into overlayfs) never run a
# container, and the system's runc (install.sh) serves the containers the e2e suite starts.
set -euo pipefail

cache="${PULLTRACE_CACHE:-$HOME/.cache/pulltrace}/containerd"
# suite -> the containerd release it is expected to carry (a prefix of `containerd --version`).
declare -A want=([trixie]=1.7 [sid]=2.1)
suites=("$@")
[ ${#suites[@]} -gt 0 ] || suites=(trixie sid)

fail() {
  echo "containerd $1: $2" >&2
  exit 1
}

# The Debian mirror this machine already uses (deb822 or one-line sources), else the default;
# PULLTRACE_DEBIAN_MIRROR overrides it.
mirror() {
  local uri="${PULLTRACE_DEBIAN_MIRROR:-}"
  if [ -z "$uri" ] && [ -f /etc/apt/sources.list.d/debian.sources ]; then
    uri=$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/debian.sources)
  fi
  if [ -z "$uri" ] && [ -f /etc/apt/sources.list ]; then
    uri=$(awk '$1=="deb"{for(i=2;i<=NF;i++) if($i ~ /^https?:/){print $i; exit}}' /etc/apt/sources.list)
  fi
  echo "${uri:-http://deb.debian.org/debian}"
}

fetch() {
  local suite=$1 dir="$cache/$1"
  local bin="$dir/usr/bin/containerd"
  if [ -x "$bin" ] && [ -x "$dir/usr/bin/ctr" ]; then
    echo "containerd $suite: cached, $("$bin" --version | awk '{print $3}') in $dir/usr/bin"
    return 0
  fi
  command -v apt-get >/dev/null || fail "$suite" "apt-get is missing (a Debian machine is needed)"
  command -v dpkg >/dev/null || fail "$suite" "dpkg is missing"
  local lists="$cache/lists-$suite" debs="$cache/debs-$suite" list="$cache/$suite.list"
  local aptcache="$cache/apt-cache-$suite"
  mkdir -p "$lists/partial" "$debs" "$aptcache/archives/partial"
  echo "deb [trusted=yes] $(mirror) $suite main" >"$list"
  # Own sources list, lists dir and package cache (/var/cache/apt/*.bin would otherwise be
  # rebuilt from the other suite's lists).
  local apt=(-o "Dir::Etc::sourcelist=$list" -o Dir::Etc::sourceparts=- -o "Dir::State::Lists=$lists"
    -o "Dir::Cache=$aptcache")
  echo "containerd $suite: reading the $suite package lists"
  apt-get "${apt[@]}" --error-on=any update -qq >"$cache/apt-$suite.log" 2>&1 ||
    fail "$suite" "apt-get update for $suite failed (log $cache/apt-$suite.log):
$(tail -5 "$cache/apt-$suite.log")"
  rm -f "$debs"/containerd_*.deb
  (cd "$debs" && apt-get "${apt[@]}" download containerd) >>"$cache/apt-$suite.log" 2>&1 ||
    fail "$suite" "apt-get download containerd from $suite failed (log $cache/apt-$suite.log):
$(tail -5 "$cache/apt-$suite.log")"
  local deb
  deb=$(ls "$debs"/containerd_*.deb 2>/dev/null | head -1 || true)
  [ -n "$deb" ] || fail "$suite" "no containerd package was downloaded into $debs"
  # Unpack into a fresh dir, then move it in place: an interrupted run leaves no half tree.
  rm -rf "$dir.tmp"
  dpkg -x "$deb" "$dir.tmp" || fail "$suite" "dpkg -x $deb failed"
  [ -x "$dir.tmp/usr/bin/containerd" ] || fail "$suite" "$deb holds no usr/bin/containerd"
  local version
  version=$("$dir.tmp/usr/bin/containerd" --version 2>&1 | awk '{print $3}') ||
    fail "$suite" "the unpacked containerd does not run: $version"
  case "$version" in
  "${want[$suite]:-}"* | v"${want[$suite]:-}"*) ;;
  *) fail "$suite" "expected containerd ${want[$suite]:-?}.x in $suite, got '$version' ($deb)" ;;
  esac
  rm -rf "$dir"
  mv "$dir.tmp" "$dir"
  echo "containerd $suite: $version in $dir/usr/bin ($(basename "$deb"))"
}

for s in "${suites[@]}"; do
  [ -n "${want[$s]:-}" ] || fail "$s" "unknown suite (known: ${!want[*]})"
  fetch "$s"
done
