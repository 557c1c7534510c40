#!/usr/bin/env bash
# Installs, from Debian, what building spate needs beyond Rust and gcc: the OpenSSL and libcurl
# headers librdkafka links for TLS, SCRAM and OIDC (ADR 011), and pkg-config to find them.
# Arguments: more packages to install if missing. Run by scripts/run.sh and scripts/test.sh.
need_pkgs=()
for p in libssl-dev libcurl4-openssl-dev pkg-config "$@"; do
  dpkg -s "$p" >/dev/null 2>&1 || need_pkgs+=("$p")
done
if [ ${#need_pkgs[@]} -gt 0 ]; then
  echo "== installing ${need_pkgs[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need_pkgs[@]}" >/dev/null
fi
