#!/bin/bash
# A/B in one session: an older commit's code against this tree, alternating, with this tree's run.py.
#   bench/ship/ab.sh [BASE_REF=e46c4d8] [ROUNDS=2] [ORDERS=1000]
# Needs BENCH_DATABASE_URL and REDIS_URL as for run.py. The old code is unpacked with `git archive` into a
# temporary directory (removed at the end) and runs with this tree's .venv.
set -euo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
base_ref=${1:-e46c4d8}; rounds=${2:-2}; orders=${3:-1000}
old=$(mktemp -d)
trap 'rm -rf "$old"' EXIT
git -C "$here" archive "$base_ref" | tar -x -C "$old"
cp "$here/bench/ship/run.py" "$old/bench/ship/run.py"
ln -s "$here/.venv" "$old/.venv"
for i in $(seq 1 "$rounds"); do
  for side in old new; do
    dir=$old; [ "$side" = new ] && dir=$here
    echo "=== round $i $side ($base_ref vs working tree) $(date -u +%T) load $(cut -d' ' -f1-3 /proc/loadavg)"
    (cd "$dir" && .venv/bin/python bench/ship/run.py --orders "$orders" --timeout 600 2>&1 \
      | grep -E "^(shipped|throughput|dupl|losses|codes|worker RSS|row|result)") || true
  done
done
