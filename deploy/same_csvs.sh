#!/usr/bin/env bash
# same_csvs.sh A B: exits 0 if the results folders A and B hold the same CSV files (top level and
# raw/), byte for byte; otherwise names the first difference and exits 1. Used by the scheduler
# tests (deploy/*/ci.sh) to compare a merged folder with an unsharded run.
set -euo pipefail
a=${1:?usage: same_csvs.sh A B}
b=${2:?usage: same_csvs.sh A B}
list() { (cd "$1" && find . -name '*.csv' | sort); }
if [ "$(list "$a")" != "$(list "$b")" ]; then
    echo "same_csvs: $a and $b hold different CSV files" >&2
    diff <(list "$a") <(list "$b") >&2 || true
    exit 1
fi
n=0
for f in $(list "$a"); do
    cmp "$a/$f" "$b/$f"
    n=$((n + 1))
done
[ "$n" -ge 9 ] || { echo "same_csvs: only $n CSV files in $a" >&2; exit 1; }
echo "same_csvs: $n CSV files identical ($a = $b)"
