#!/usr/bin/env bash
# `make setup`: everything the tests and the demo need, on a developer machine or a fresh Debian 12
# CI machine (as root, no stdin). Idempotent, and a few seconds when nothing changed:
#   system packages (apt, only what is missing), .venv (python3.11), the package in editable mode
#   (skipped while pyproject.toml is unchanged), the Kafka jars (cached), Prometheus + promtool.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
VENV=$ROOT/.venv
STAMP=$VENV/.clickscore-setup   # holds the sha256 of the pyproject.toml last installed
export DEBIAN_FRONTEND=noninteractive PIP_DISABLE_PIP_VERSION_CHECK=1

say() { echo "setup: $*" >&2; }
die() {
  echo "setup: $*" >&2
  exit 1
}

APT_UPDATED=0
apt_install() {
  # Install Debian packages as root (or via password-less sudo); anything else gets one clear error.
  local sudo=()
  if [[ $(id -u) != 0 ]]; then
    sudo -n true 2>/dev/null || die "missing $* and not root: install them (apt-get install $*) and rerun"
    sudo=(sudo -n)
  fi
  command -v apt-get >/dev/null || die "missing $* and no apt-get here: install them and rerun"
  say "apt-get install $*"
  if [[ $APT_UPDATED == 0 ]]; then
    "${sudo[@]}" apt-get update -q >/dev/null
    APT_UPDATED=1
  fi
  # policy-rc.d 101: packages with a service (prometheus) must not start a daemon on install.
  local policy=/usr/sbin/policy-rc.d own_policy=0
  if [[ ! -e $policy ]]; then
    printf '#!/bin/sh\nexit 101\n' | "${sudo[@]}" tee "$policy" >/dev/null
    "${sudo[@]}" chmod +x "$policy"
    own_policy=1
  fi
  local rc=0
  "${sudo[@]}" apt-get install -y -q --no-install-recommends "$@" >/dev/null || rc=$?
  [[ $own_policy == 0 ]] || "${sudo[@]}" rm -f "$policy"
  [[ $rc == 0 ]] || die "apt-get install $* failed ($rc)"
}

find_python() {
  # python3.11 first (the version CI and the Dockerfile use); any 3.11/3.12 python3 will do.
  local py
  for py in python3.11 python3; do
    if command -v "$py" >/dev/null &&
      "$py" -c 'import sys; sys.exit(not (3, 11) <= sys.version_info[:2] <= (3, 12))'; then
      echo "$py"
      return 0
    fi
  done
  return 1
}

system_packages() {
  local missing=()
  command -v java >/dev/null || missing+=(openjdk-17-jre-headless)
  command -v mvn >/dev/null || missing+=(maven)
  { command -v prometheus >/dev/null && command -v promtool >/dev/null; } || missing+=(prometheus)
  [[ -x $VENV/bin/python ]] || find_python >/dev/null || missing+=(python3)
  ((${#missing[@]} == 0)) || apt_install "${missing[@]}"
}

python_env() {
  if [[ ! -x $VENV/bin/python ]]; then
    local py
    py=$(find_python) || die "no python3.11 (or 3.12) found; install python3.11 and rerun"
    say "creating $VENV with $py"
    if ! "$py" -m venv "$VENV" 2>/dev/null; then
      # Debian's own python3 makes venvs only with python3-venv (its ensurepip is cut out).
      rm -rf "$VENV"
      apt_install python3-venv
      "$py" -m venv "$VENV"
    fi
  fi
  local want have=""
  want=$(sha256sum "$ROOT/pyproject.toml" | cut -d' ' -f1)
  [[ -f $STAMP ]] && have=$(<"$STAMP")
  if [[ $want != "$have" ]]; then
    # Sizes measured on a CPU-only machine (README "Setup"): PyPI's Linux torch wheel brings the
    # CUDA libraries (nvidia-* 3.0 GB, triton 1.0 GB) whether or not there is a GPU.
    say "pip install -e '.[training,dev]' (pyproject.toml changed or first run): the first run"
    say "  downloads PyTorch with its CUDA libraries and builds a .venv of about 6.3 GB (6 min on 2 cores)"
    local started=$SECONDS
    "$VENV/bin/python" -m pip install -q -e "$ROOT[training,dev]"
    echo "$want" >"$STAMP"
    say "pip install done in $((SECONDS - started)) s; .venv is $(du -sh "$VENV" | cut -f1)"
  fi
}

main() {
  local started=$SECONDS lock
  # One setup at a time per checkout (several shells or CI steps may call it at once).
  lock=${TMPDIR:-/tmp}/clickscore-setup.$(echo "$ROOT" | sha256sum | cut -c1-12).lock
  exec 9>"$lock"
  flock 9
  say "system packages (java, mvn, prometheus, python 3.11): installing only what is missing"
  system_packages
  python_env
  say "Kafka jars (fetched once with mvn from Maven Central, then cached)"
  local libs
  libs=$("$ROOT/deploy/local/kafka.sh" fetch)
  say "  $(du -sh "$libs" | cut -f1) in $libs"
  say "ready in $((SECONDS - started)) s"
}

main "$@"
