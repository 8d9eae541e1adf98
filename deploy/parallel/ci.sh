#!/usr/bin/env bash
# The GNU parallel recipe of the README's sharding section, tested for real: three shards of tests/data/tiny.toml
# run by `parallel` on this host (`--shard {#}/3`), merged, and every CSV checked against an
# unsharded run, byte for byte. Installs Debian's `parallel` if missing (needs root then) and uses
# target/release/d11sim (`cargo build --release`). Called from .ci/run.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
bin=$root/target/release/d11sim
scenario=$root/tests/data/tiny.toml
replications=14
start=$(date +%s)
[ -x "$bin" ] || { echo "parallel ci: $bin missing (run cargo build --release)" >&2; exit 1; }
if ! command -v parallel >/dev/null; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends parallel >/dev/null
fi
work=$(mktemp -d /tmp/d11sim-parallel-ci.XXXXXX)
trap 'rm -rf "$work"' EXIT

# The recipe: one job per shard, {#} is parallel's 1-based job number.
parallel --will-cite --halt now,fail=1 --jobs 3 \
    "$bin" run "$scenario" --replications "$replications" --threads 1 --quiet \
    --shard {#}/3 --out "$work/shards/{#}" ::: 1 2 3
"$bin" merge "$work"/shards/* --out "$work/merged" --quiet
"$bin" run "$scenario" --replications "$replications" --out "$work/whole" --quiet
for k in 1 2 3; do grep -q "\"shard\": \"$k/3\"" "$work/shards/$k/manifest.json"; done
"$root/deploy/same_csvs.sh" "$work/merged" "$work/whole"
echo "parallel ci: 3 shards merged = unsharded run, in $(( $(date +%s) - start )) s"
