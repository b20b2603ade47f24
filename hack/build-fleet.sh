#!/usr/bin/env bash
# Builds the local-fleet program (devfleet/) once per machine and reuses it: the binary is cached
# under a key made of the fleet module's go.mod, go.sum and sources, so it is rebuilt only when
# those change. bin/flotilla-devfleet is linked to the cached binary.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cache=${FLOTILLA_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/flotilla}
key=$(cd "$root/devfleet" && find . -type f \( -name '*.go' -o -name go.mod -o -name go.sum \) -print0 \
  | sort -z | xargs -0 sha256sum | sha256sum | cut -c1-16)
out="$cache/devfleet-$key/flotilla-devfleet"
mkdir -p "$root/bin"
if [ ! -x "$out" ]; then
  echo "building the local fleet (kube-apiserver, controller-manager, scheduler, etcd, KWOK) into $out"
  echo "first build on a machine: about 9 minutes on 2 free cores (15-20 when other builds share them), ~3 GB of build cache"
  start=$(date +%s)
  mkdir -p "$(dirname "$out")"
  ( cd "$root/devfleet" && go build \
      -ldflags "-s -w -X k8s.io/component-base/version.gitVersion=v1.36.3 -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=36" \
      -o "$out.tmp" ./cmd/flotilla-devfleet ) &
  pid=$!
  ticks=0
  while kill -0 "$pid" 2>/dev/null; do
    sleep 2
    ticks=$((ticks + 1))
    if [ $((ticks % 15)) -eq 0 ] && kill -0 "$pid" 2>/dev/null; then
      echo "  still building the local fleet... $(( $(date +%s) - start ))s"
    fi
  done
  wait "$pid"
  mv "$out.tmp" "$out"
  echo "local fleet built in $(( $(date +%s) - start ))s"
  # Older builds of the fleet are no longer referenced.
  find "$cache" -maxdepth 1 -name 'devfleet-*' ! -name "devfleet-$key" -exec rm -rf {} + 2>/dev/null || true
fi
ln -sfn "$out" "$root/bin/flotilla-devfleet"
