#!/usr/bin/env bash
# The Slurm recipe of the README's sharding section, tested for real: installs Debian's slurmctld, slurmd and
# munge, starts a one-node cluster on localhost from deploy/slurm/slurm.conf, runs three shards of
# tests/data/tiny.toml as a job array (`--shard auto/3`), merges them and checks every CSV against
# an unsharded run, byte for byte. Stops the daemons it started. Needs root (apt, daemons) and
# target/release/d11sim (`cargo build --release`). Called from .ci/run.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
bin=$root/target/release/d11sim
scenario=$root/tests/data/tiny.toml
replications=14
start=$(date +%s)
[ -x "$bin" ] || { echo "slurm ci: $bin missing (run cargo build --release)" >&2; exit 1; }

need=()
for cmd in slurmctld slurmd munged sbatch; do command -v "$cmd" >/dev/null || need=(slurmctld slurmd munge); done
if [ ${#need[@]} -gt 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends slurmctld slurmd munge slurm-client >/dev/null
fi

work=$(mktemp -d /tmp/d11sim-slurm-ci.XXXXXX)
chmod 755 "$work"
state=$work/state
mkdir -p "$state/slurmctld" "$state/slurmd" "$state/munge"
pids=()
cleanup() {
    local rc=$?
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$pid" 2>/dev/null || true
    done
    if [ $rc -ne 0 ]; then
        echo "slurm ci: FAILED; logs:" >&2
        tail -n 30 "$state"/*.log "$work"/logs/* 2>/dev/null >&2 || true
    fi
    rm -rf "$work"
    exit $rc
}
trap cleanup EXIT INT TERM

# munge: our own daemon and socket, started as the munge user, with the packaged key.
chown munge:munge "$state/munge"
[ -s /etc/munge/munge.key ] || { mungekey --create --keyfile=/etc/munge/munge.key 2>/dev/null || \
    dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none; }
chown munge:munge /etc/munge/munge.key && chmod 400 /etc/munge/munge.key
socket=$state/munge/munge.socket
runuser -u munge -- munged --socket="$socket" --pid-file="$state/munge/munged.pid" \
    --log-file="$state/munge/munged.log" --seed-file="$state/munge/munged.seed"
for _ in $(seq 50); do [ -s "$state/munge/munged.pid" ] && break; sleep 0.1; done
pids+=("$(cat "$state/munge/munged.pid")")
munge --socket="$socket" -n | unmunge --socket="$socket" >/dev/null

# Slurm: the repository's config with this host's name, free ports and the state folder.
host=$(hostname -s)
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("",0)); print(s.getsockname()[1])'; }
export SLURM_CONF=$state/slurm.conf
sed -e "s|@HOST@|$host|g" -e "s|@STATE@|$state|g" -e "s|@MUNGE_SOCKET@|$socket|g" \
    -e "s|@CPUS@|$(nproc)|g" -e "s|@CTLD_PORT@|$(free_port)|g" -e "s|@SLURMD_PORT@|$(free_port)|g" \
    "$root/deploy/slurm/slurm.conf" > "$SLURM_CONF"
slurmctld -D -f "$SLURM_CONF" > "$state/slurmctld.out" 2>&1 &
pids+=($!)
slurmd -D -f "$SLURM_CONF" -N "$host" > "$state/slurmd.out" 2>&1 &
pids+=($!)
for _ in $(seq 100); do
    sinfo -h -o %t 2>/dev/null | grep -qE '^idle' && break
    sleep 0.2
done
sinfo -h -o '%P %t %D' | grep -q idle || { echo "slurm ci: node never became idle" >&2; sinfo >&2; exit 1; }

# Three shards as a job array, then merge and compare with an unsharded run.
mkdir -p "$work/logs" "$work/shards"
D11SIM=$bin sbatch --array=0-2 --wait --quiet --output="$work/logs/shard-%a.out" \
    --chdir="$work" --export=ALL,D11SIM="$bin" \
    "$root/deploy/slurm/shards.sbatch" "$scenario" "$work/shards" --replications "$replications"
"$bin" merge "$work"/shards/shard-* --out "$work/merged" --quiet
"$bin" run "$scenario" --replications "$replications" --out "$work/whole" --quiet
for k in 0 1 2; do
    grep -q "\"shard\": \"$((k + 1))/3\"" "$work/shards/shard-$k/manifest.json"
done
"$root/deploy/same_csvs.sh" "$work/merged" "$work/whole"
echo "slurm ci: 3-task job array merged = unsharded run, in $(( $(date +%s) - start )) s"
