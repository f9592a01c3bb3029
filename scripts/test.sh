#!/usr/bin/env bash
# Runs pullgate's whole test suite: formatting, lints, unit tests and the integration tests
# against real components. Installs the Debian packages the tests need first (as root, with
# apt-get), so a fresh machine passes; a component that cannot be installed fails the run.
set -euo pipefail
cd "$(dirname "$0")/.."

# Binaries the integration tests start, and the Debian package that provides each.
declare -A NEED=(
  [docker-registry]=docker-registry
  [skopeo]=skopeo
  [dockerd]=docker.io
  [containerd]=containerd
  [ctr]=containerd
  [podman]=podman
  [htpasswd]=apache2-utils
  [nginx]=nginx-light
  [wrk]=wrk
  [curl]=curl
  [openssl]=openssl
  [notary]=notary
  [notary-server]=notary
  [notary-signer]=notary
)
missing=()
for bin in "${!NEED[@]}"; do
  command -v "$bin" >/dev/null 2>&1 || PATH="$PATH:/usr/sbin:/sbin" command -v "$bin" >/dev/null 2>&1 || missing+=("${NEED[$bin]}")
done
if ((${#missing[@]})); then
  echo "installing: ${missing[*]}"
  if [ "$(id -u)" != 0 ]; then
    echo "error: missing packages (${missing[*]}) and not root; install them and re-run" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends $(printf '%s\n' "${missing[@]}" | sort -u) >/dev/null
fi
export PATH="$PATH:/usr/sbin:/sbin"

cargo fmt --all -- --check
cargo clippy --locked --all-targets -- -D warnings
cargo test --locked --all-targets
