#!/usr/bin/env bash
# Planning latency before and after a change, in one run on one machine, alternating so that load
# drifts hit both sides alike: bench/plan.py (CEM 300x30 H5, 1 thread, eager and compiled, fp32 and
# bf16) on a checkout of REV (before) and on this working tree (after), ROUNDS times each.
#   bash bench/plan_before_after.sh a22d1d6 [ROUNDS=2]
set -euo pipefail
rev=${1:?usage: bench/plan_before_after.sh REV [ROUNDS]}; rounds=${2:-2}
here=$(cd "$(dirname "$0")/.." && pwd); before=$(mktemp -d)/before
git -C "$here" worktree add --detach "$before" "$rev" > /dev/null
trap 'git -C "$here" worktree remove --force "$before"' EXIT
export OMP_NUM_THREADS=1
for round in $(seq "$rounds"); do
  for side in before after; do
    root=$before; [ "$side" = after ] && root=$here
    echo "=== round $round: $side ($root) ==="
    (cd "$root" && PYTHONPATH="$root/src" "$here/.venv/bin/python" bench/plan.py --quick --fast-only --compile --repeats 5)
  done
done
