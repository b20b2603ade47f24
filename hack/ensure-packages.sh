#!/usr/bin/env bash
# ensure-packages.sh CMD:PACKAGE... installs the Debian package of each missing command, saying so.
# Used by `make demo` and .ci/run; needs root or sudo for apt-get.
set -euo pipefail
missing=()
for pair in "$@"; do
	cmd=${pair%%:*} pkg=${pair#*:}
	command -v "$cmd" >/dev/null 2>&1 || missing+=("$pkg")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "installing ${missing[*]} from Debian's packages (first time on this machine)"
sudo=""
[ "$(id -u)" -ne 0 ] && sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq >/dev/null
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
