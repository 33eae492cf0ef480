#!/usr/bin/env bash
# Debian packages the tests use, installed only when missing (a warm machine
# pays one dpkg query). kubectl is provided by the machine image.
set -euo pipefail
# python3-kubernetes: a real client in the e2e tests; curl: an HTTP/1.1 and HTTP/2 client in them; postgresql and haproxy: the HA demo and its test; prometheus: scrapes the metrics;
# chromium: the web pages' tests (skipped when GATEHOUSE_CHROMIUM names another Chromium,
# e.g. the Chrome of a CI runner whose distribution ships chromium only as a snap).
packages=(python3-kubernetes curl postgresql prometheus haproxy)
[[ -n "${GATEHOUSE_CHROMIUM:-}" ]] || packages+=(chromium)
missing=()
for p in "${packages[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "system-deps: installing ${missing[*]}" >&2
  if [[ $(id -u) -ne 0 ]]; then sudo=sudo; else sudo=; fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
for cmd in kubectl go; do
  command -v "$cmd" >/dev/null || { echo "system-deps: '$cmd' is not on PATH: install it (kubectl >= 1.30, Go >= 1.25) and run again" >&2; exit 1; }
done
