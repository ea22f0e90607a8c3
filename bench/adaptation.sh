#!/usr/bin/env bash
# The adaptation table of issue 14 on Reacher with a weakened wrist (joint_gain [1, 0.3]), docs/adaptation.md:
# success before the change, after it without adaptation, after dynamics-only fine-tuning on 10 / 30 / 100
# play episodes, after fine-tuning everything / retraining from scratch on the 100, and the proposal
# (SSR, and alone as a policy, before and after fine-tuning it on the play data). Every stage prints its
# wall time; the commands are echoed as run.
#   bash bench/adaptation.sh [OUT=runs/adapt_reacher] [--quick]     (--quick: a smoke test in minutes)
set -euo pipefail
out=${1:-runs/adapt_reacher}; quick=${2:-}
here=$(cd "$(dirname "$0")/.." && pwd)
py=${PYTHON:-$here/.venv/bin/python}
ft() { echo "+ forethought $*" >&2; local t0=$SECONDS; "$py" -m forethought.cli "$@"; echo "  [$((SECONDS - t0)) s]" >&2; }
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
env=forethought/Reacher-v0; weak='{"joint_gain": [1.0, 0.3]}'
episodes=1000; play=100; tasks=100; train_steps=1500; adapt_steps=500; prop_steps=3000; n_eval=50; preset=small
plan=(--planner cem --samples 300 --iterations 30 --horizon 5 --bf16)
if [ "$quick" = --quick ]; then
  episodes=40; play=30; tasks=20; train_steps=30; adapt_steps=10; prop_steps=10; n_eval=4; preset=tiny
  plan=(--planner cem --samples 16 --iterations 2 --horizon 5)
fi
evalargs=(--episodes "$n_eval" --skip-solved --goal-split all --no-progress --overwrite)

# 1. The unchanged system: training data, the model, an evaluation task set; the changed system: play data
#    and an evaluation task set drawn with the same seeds (tasks of either set are never trained on).
ft collect --env $env --policy smooth --episodes $episodes --steps 100 --seed 0 --out "$out/data" --resume --quiet
ft collect --env $env --env-kwargs "$weak" --policy smooth --episodes $play --steps 100 --seed 100000 \
   --out "$out/play_weak" --resume --quiet
ft collect --env $env --policy smooth --episodes $tasks --steps 100 --seed 2000000 --out "$out/tasks" --resume --quiet
ft collect --env $env --env-kwargs "$weak" --policy smooth --episodes $tasks --steps 100 --seed 2000000 \
   --out "$out/tasks_weak" --resume --quiet
ft train --data "$out/data" --preset $preset --steps $train_steps --out "$out/run" --resume --no-progress
ft train-proposal --model "$out/run" --horizon 5 --steps $prop_steps --out "$out/proposal" --no-progress \
   $( [ -d "$out/proposal/ckpt" ] && echo --resume )

# 2. Adaptation on 10 / 30 / 100 play episodes (same steps for each), everything fine-tuned, a model from scratch.
for n in 10 30 $play; do
  ft adapt --model "$out/run" --data "$out/play_weak" --episodes $n --only dynamics --steps $adapt_steps \
     --out "$out/dyn$n" --no-progress --no-tensorboard $( [ -d "$out/dyn$n/ckpt" ] && echo --resume )
done
ft adapt --model "$out/run" --data "$out/play_weak" --only all --steps $adapt_steps --out "$out/all$play" \
   --no-progress --no-tensorboard $( [ -d "$out/all$play/ckpt" ] && echo --resume )
ft train --data "$out/play_weak" --preset $preset --steps $train_steps --out "$out/scratch$play" --resume --no-progress
ft train-proposal --model "$out/dyn$play" --data "$out/play_weak" --init "$out/proposal" --horizon 5 \
   --steps $adapt_steps --out "$out/proposal_weak" --no-progress $( [ -d "$out/proposal_weak/ckpt" ] && echo --resume )

# 3. Evaluations: CEM on every model; SSR and the proposal alone on the adapted one.
ft eval --model "$out/run" --data "$out/tasks" "${evalargs[@]}" "${plan[@]}" --out "$out/reports/before"
ft eval --model "$out/run" --data "$out/tasks_weak" "${evalargs[@]}" "${plan[@]}" --out "$out/reports/no_adaptation"
for n in 10 30 $play; do
  ft eval --model "$out/dyn$n" --data "$out/tasks_weak" "${evalargs[@]}" "${plan[@]}" --out "$out/reports/dyn$n"
done
ft eval --model "$out/all$play" --data "$out/tasks_weak" "${evalargs[@]}" "${plan[@]}" --out "$out/reports/all$play"
ft eval --model "$out/scratch$play" --data "$out/tasks_weak" "${evalargs[@]}" "${plan[@]}" --out "$out/reports/scratch$play"
ft eval --model "$out/run" --data "$out/tasks" "${evalargs[@]}" --planner ssr --proposal "$out/proposal" \
   --samples 256 --horizon 5 --bf16 --out "$out/reports/ssr_before"
ft eval --model "$out/dyn$play" --data "$out/tasks_weak" "${evalargs[@]}" --planner ssr --proposal "$out/proposal" \
   --samples 256 --horizon 5 --bf16 --out "$out/reports/ssr_dyn$play"
for p in proposal proposal_weak; do
  ft eval --model "$out/dyn$play" --data "$out/tasks_weak" "${evalargs[@]}" --planner proposal --proposal "$out/$p" \
     --horizon 5 --receding 5 --out "$out/reports/policy_$p"
done
"$py" - "$out/reports" <<'PY'
import json, sys, pathlib
for report in sorted(pathlib.Path(sys.argv[1]).glob("*/report.json")):
    r = json.loads(report.read_text())["results"]
    row = next(v for k, v in r.items() if k != "random")
    print(f"{report.parent.name:24s} {100 * row['success_rate']:5.1f}% [{100 * row['ci95'][0]:.0f}, {100 * row['ci95'][1]:.0f}]"
          f"  random {100 * r['random']['success_rate']:.0f}%  {1000 * (row['decision_time_s']['mean'] or 0):.0f} ms/decision")
PY
