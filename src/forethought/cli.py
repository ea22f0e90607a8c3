"""The ``forethought`` command: a thin layer that parses options and calls the library.

Every subcommand imports what it needs when it runs, so ``forethought --help`` stays fast.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Callable, Sequence

from forethought._config_cli import parse_json_object
from forethought.data.arguments import print_summary

EPILOG = """\
The loop, one command a step:
  forethought envs                                   list the built-in environments
  forethought collect --env forethought/TwoRoom-v0 --policy smooth --episodes 200 --out data/tworoom
  forethought info data/tworoom                      what a dataset holds
  forethought verify data/tworoom --full             check every byte of a dataset against its checksums
  forethought train --data data/tworoom --preset small --out runs/tworoom
  forethought eval --model runs/tworoom --planner cem --episodes 50 --out reports/tworoom
  forethought train-policy --method gcbc --model runs/tworoom --out runs/tworoom-gcbc   a model-free baseline
  forethought surprise-calibrate --model runs/tworoom   alarm thresholds for surprise
  forethought surprise-eval --model runs/tworoom --out reports/surprise
  forethought distill --model runs/tworoom/model --data data/tworoom --out runs/tworoom/draft
  forethought train-proposal --model runs/tworoom --out runs/tworoom_proposal   a diffusion action proposal
  forethought train-dynamics --model runs/tworoom --horizon 10 --out runs/tworoom_dyn   diffusion dynamics
  forethought adapt --model runs/tworoom --data data/tworoom_weak --out runs/tworoom_adapted   new physics
  forethought run --model runs/tworoom --memory runs/online --episodes 100 --change-at 20 --change-action-scale 0.3

Run `forethought COMMAND --help` for the options of one command, with examples.
"""


class _Formatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Show defaults and keep the hand-written line breaks of descriptions and epilogs."""


class _Parser(argparse.ArgumentParser):
    """Usage errors in the CLI's one error style, ``forethought <command>: <argument>: <what is wrong>. <what to do>``."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: {message}. Run `{self.prog} --help` for the options.\n")


def error_message(command: str | None, err: BaseException) -> str:
    """``forethought <command>: <file or argument>: <what is wrong>. <what to do>`` for a library error.

    Library errors name the file or the option first and say what to do; an ``OSError`` from the
    system (no message of ours) is written as ``<file>: <what the system says>``.
    """
    prog = f"forethought {command}" if command else "forethought"
    text = str(err)
    if isinstance(err, OSError) and err.filename is not None and err.strerror:
        text = f"{err.filename}: {err.strerror}"
    return f"{prog}: {text}"


def _json_dict(text: str) -> dict:
    """Parse a JSON object given on the command line (``--env-kwargs '{"image_size": 96}'``)."""
    try:
        return parse_json_object(text, option=None)  # argparse names the option
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


# --------------------------------------------------------------------------- envs
def _cmd_envs(args: argparse.Namespace) -> int:
    from forethought.envs import builtin_env_ids

    print("Built-in environments (any registered gymnasium id works with `collect` too):")
    for env_id in builtin_env_ids():
        print(f"  {env_id}")
    return 0


def _add_envs(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "envs",
        help="list the built-in environments",
        description="List the built-in environments.",
        formatter_class=_Formatter,
    )
    p.set_defaults(func=_cmd_envs)


# --------------------------------------------------------------------------- collect
def _cmd_collect(args: argparse.Namespace) -> int:
    from forethought.data.collect import collect

    summary = collect(
        args.env,
        args.out,
        episodes=args.episodes,
        steps=args.steps,
        policy=args.policy,
        policy_kwargs=args.policy_kwargs,
        env_kwargs=args.env_kwargs,
        workers=args.workers,
        seed=args.seed,
        resume=args.resume,
        repair=args.repair,
        progress=not args.quiet,
        drop_actions=args.drop_actions,
    )
    print_summary(summary)
    return 0


def _add_collect(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "collect",
        help="run a policy in an environment and write the episodes to a dataset",
        description=(
            "Run a data-collection policy in an environment and append every finished episode to\n"
            "a crash-safe dataset folder. Episode i is seeded with SEED + i, so the dataset is the\n"
            "same whatever the number of workers and however often the run was interrupted.\n"
            "A killed run keeps every completed episode; rerun with --resume to finish it."
        ),
        epilog=(
            "examples:\n"
            "  forethought collect --env forethought/TwoRoom-v0 --policy smooth --episodes 2000 --steps 100 --out data/tworoom\n"
            "  forethought collect --env forethought/PushT-v0 --policy pusht-expert --episodes 1000 --steps 100 --workers 2 --out data/pusht\n"
            "  forethought collect --env forethought/TwoRoom-v0 --episodes 2000 --out data/tworoom --resume   # after a crash\n"
            "  forethought collect --env forethought/TwoRoom-v0 --episodes 2000 --out data/tworoom --resume --repair   # damaged chunks\n"
            "  forethought collect --env CartPole-v1 --episodes 100 --steps 200 --out data/cartpole             # any gymnasium id\n"
            "  forethought collect --env forethought/TwoRoom-v0 --policy smooth --episodes 2000 --drop-actions --out data/tworoom_video"
        ),
        formatter_class=_Formatter,
    )
    p.add_argument("--env", required=True, help="environment id (see `forethought envs`)")
    p.add_argument("--out", required=True, type=Path, help="dataset folder to create (or to continue with --resume)")
    p.add_argument("--episodes", type=int, default=200, help="total number of episodes the dataset should hold")
    p.add_argument("--steps", type=int, default=100, help="env steps per episode (fewer if the env ends it)")
    p.add_argument(
        "--policy",
        default="random",
        help="random (uniform), smooth (temporally correlated headings), pusht (noisy scripted pusher) or "
        "pusht-expert (pushes the T to random target poses as an expert would; --policy-kwargs "
        "'{\"noise\": 0.1, \"speed\": 0.3}': speed 0.3 paces it like replayed human demonstrations, 1 is full speed)",
    )
    p.add_argument("--policy-kwargs", type=_json_dict, default=None, help="JSON object passed to the policy")
    p.add_argument("--env-kwargs", type=_json_dict, default=None, help='JSON object passed to the env, e.g. \'{"image_size": 96}\'')
    p.add_argument("--workers", type=int, default=1, help="parallel environment processes (one core each)")
    p.add_argument("--seed", type=int, default=0, help="base seed: episode i uses SEED + i")
    p.add_argument("--resume", action="store_true", help="continue an interrupted dataset instead of refusing it")
    p.add_argument("--repair", action="store_true",
                   help="with --resume: first re-collect, in place, the episodes whose chunk files are missing or "
                        "corrupt (checked to be bit-identical to what was recorded); see `forethought verify`")
    p.add_argument("--drop-actions", action="store_true",
                   help="write an action-free dataset (the policy acts, its actions are not stored: video without "
                        "labels) for `forethought pretrain`; commands that need actions refuse it")
    p.add_argument("--no-progress", "--quiet", dest="quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_collect)


# --------------------------------------------------------------------------- info
# --------------------------------------------------------------------------- minari
def _cmd_import_minari(args: argparse.Namespace) -> int:
    from forethought.data.minari_io import import_minari

    store = import_minari(args.source, args.out, progress=not args.quiet)
    print(f"Imported into {args.out}")
    print_summary(store.summary())
    return 0


def _cmd_export_minari(args: argparse.Namespace) -> int:
    from forethought.data.minari_io import export_minari

    path = export_minari(args.dataset, args.out, dataset_id=args.dataset_id, progress=not args.quiet)
    print(f"Exported to {path} (load it with minari.MinariDataset({str(path)!r}))")
    return 0


def _add_minari(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "import-minari",
        help="import a local Minari dataset into a Forethought dataset",
        description=(
            "Copy a Minari dataset that is already on this machine into a Forethought dataset.\n"
            "Nothing is downloaded. SOURCE is a Minari dataset folder (the one holding data/ or\n"
            "data/metadata.json itself) or a dataset id found under the local Minari root\n"
            "($MINARI_DATASETS_PATH, default ~/.minari/datasets). info['state'] is kept if present."
        ),
        epilog="example:\n  forethought import-minari ~/.minari/datasets/mujoco/pusher/expert-v0 --out data/pusher",
        formatter_class=_Formatter,
    )
    p.add_argument("source", help="Minari dataset folder or local dataset id")
    p.add_argument("--out", required=True, type=Path, help="Forethought dataset folder to create")
    p.add_argument("--no-progress", "--quiet", dest="quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_import_minari)

    p = sub.add_parser(
        "export-minari",
        help="export a Forethought dataset to Minari format",
        description=(
            "Write a Forethought dataset as a Minari dataset folder (HDF5 storage, lossless).\n"
            "The padding action of each episode's last row is dropped, as Minari stores T actions\n"
            "for T+1 observations; the true state goes to infos['state']."
        ),
        epilog="example:\n  forethought export-minari data/tworoom --out exports/tworoom --dataset-id forethought/tworoom-random-v0",
        formatter_class=_Formatter,
    )
    p.add_argument("dataset", type=Path, help="Forethought dataset folder")
    p.add_argument("--out", required=True, type=Path, help="Minari dataset folder to create")
    p.add_argument("--dataset-id", default=None, help="Minari dataset id (default: forethought/<folder name>-v0)")
    p.add_argument("--no-progress", "--quiet", dest="quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_export_minari)


# --------------------------------------------------------------------------- train, eval, surprise, distill
def _lazy(module: str, name: str) -> Callable[[argparse.Namespace], int]:
    """A command function that imports ``module.name`` only when the command runs (torch is slow to import)."""

    def run(args: argparse.Namespace) -> int:
        import importlib

        return getattr(importlib.import_module(module), name)(args)

    return run


# Commands whose options live next to their library code, so the CLI cannot drift from it:
# (name, options module, add function, run module, run function, help, description). The options
# modules import no torch.
_LIBRARY_COMMANDS = (
    ("train", "forethought.training.arguments", "add_train_arguments", "forethought.training.api", "run_from_args",
     "train a world model on a dataset",
     "Train an action-conditioned JEPA world model on a dataset: the encoder maps frames to\n"
     "latents, the predictor maps (latents, action) to the next latent, and one regularizer\n"
     "(SIGReg by default) keeps the latents from collapsing. Checkpoints are written atomically;\n"
     "--resume continues a killed run exactly. Under torchrun it trains with DDP."),
    ("pretrain", "forethought.training.latent_arguments", "add_pretrain_arguments", "forethought.training.pretrain",
     "run_pretrain_from_args", "stage 1 without actions: a world model with latent actions from an inverse model",
     "Learn a JEPA world model from frames without actions (collect --drop-actions, import-video): the\n"
     "predictor is conditioned on a latent action inferred from two consecutive latents by an inverse\n"
     "model through a bottleneck (continuous, or |A| VQ codes). Stage 2 maps real actions into it from a\n"
     "few labelled episodes: forethought train --init RUN --data LABELLED."),
    ("adapt", "forethought.training.arguments", "add_adapt_arguments", "forethought.training.adapt",
     "run_adapt_from_args",
     "fine-tune a trained world model's dynamics (or everything) on data of a changed system",
     "Fine-tune part of a trained world model on new data, e.g. play data of a changed body\n"
     "(forethought collect --env-kwargs '{\"joint_gain\": [1, 0.3]}'): --only dynamics trains the\n"
     "predictor and keeps the encoder, readout and every action proposal frozen (DMPC). Writes a\n"
     "new run folder that names its parent model and the data used."),
    ("train-proposal", "forethought.policies.arguments", "add_train_proposal_arguments",
     "forethought.policies.arguments", "run_train_proposal_from_args",
     "train a diffusion action proposal for a world model (factorized planning)",
     "Train a behaviour prior over chunks of model actions, conditioned on the frozen encoder's\n"
     "latents (and a goal latent): DMPC's action proposal, saved apart from the model. Planners\n"
     "sample from it (forethought eval --planner ssr --proposal DIR, or as CEM/MPPI's first population)."),
    ("train-dynamics", "forethought.training.dynamics_arguments", "add_train_dynamics_arguments",
     "forethought.training.dynamics_arguments", "run_train_dynamics_from_args",
     "train a multi-step diffusion dynamics model in a world model's latents (factorized planning)",
     "Train a denoising diffusion model over the next F latents of a frozen world model, given its\n"
     "latent history and the F actions: DMPC's multi-step dynamics, saved apart from the model.\n"
     "Planners roll candidates out with it (forethought eval --dynamics DIR); bench/dynamics_error.py\n"
     "measures its compounding error against the model's own predictor."),
    ("train-policy", "forethought.policies.config", "add_train_policy_arguments", "forethought.policies.config",
     "run_train_policy_from_args", "train a goal-conditioned policy (GCBC, GCIQL, GCIVL, or through a world model)",
     "Train a goal-conditioned policy that acts in one forward pass: model-free from the reward-free\n"
     "dataset with hindsight goals (gcbc, gciql, gcivl), or only through a frozen world model's\n"
     "imagination (imagination, Dyna). Same encoder architecture, trainer, checkpoints and logs as\n"
     "`train`; evaluate it with `forethought eval --model OUT`."),
    ("import-video", "forethought.data.video", "add_import_video_arguments", "forethought.data.video",
     "run_import_video", "import folders of frames (or clips) as an action-free dataset",
     "Write a folder of image sequences (one subfolder of PNG/JPEG frames per episode) or clips as a\n"
     "dataset without actions, at a fixed frame rate. `forethought pretrain` learns latent actions from it."),
    ("info", "forethought.data.arguments", "add_info_arguments", "forethought.data.arguments", "run_info",
     "summarize a dataset",
     "Print what a dataset holds: environment, episodes, steps, spaces, size on disk."),
    ("verify", "forethought.data.arguments", "add_verify_arguments", "forethought.data.arguments", "run_verify",
     "check a dataset for missing or corrupt chunk files",
     "Check that a dataset reads back as it was written. The cheap check (default) looks for\n"
     "every chunk file the committed episodes need and compares each file's size with the one\n"
     "recorded when it was written; --full also reads every chunk and compares the crc32 of\n"
     "every file and the hash of every episode's rows with the record (the time of reading the\n"
     "whole dataset once). A damaged file is named with the array, the episodes it holds and the\n"
     "fix; the exit status is 2. Datasets written before checksums are checked for missing and\n"
     "undecodable files only; --rehash records checksums of the data as it reads now."),
    ("benchmark", "forethought.evaluation.benchmark", "add_benchmark_arguments", "forethought.evaluation.benchmark",
     "run_benchmark_from_args",
     "collect, train and evaluate every built-in task under ours and the anchors' protocols",
     "Run each task's recipe (collection policy and size, preset, training steps, planner budget)\n"
     "end to end and evaluate it under our protocol and the published systems' own (LeWM's latched\n"
     "success on training goals, stable-worldmodel's Reacher joints, DINO-WM's PointMaze goals).\n"
     "Resumable; writes a results table with the command of every stage."),
    ("eval", "forethought.evaluation.arguments", "add_eval_arguments", "forethought.evaluation.runner", "run_eval_from_args",
     "measure planning success of a trained model under the honest protocol",
     "Plan toward goal images with model-predictive control and measure success under a fixed\n"
     "protocol: start and goal from held-out episodes (goal GOAL_OFFSET steps ahead), a fixed\n"
     "budget of env steps, success judged once from the true simulator state after acting.\n"
     "The agent sees only observations and the goal observation. Writes report.json, report.md,\n"
     "a GIF of a few episodes and, with --sweep, a plot of success against planning budget."),
    ("compare", "forethought.evaluation.compare", "add_compare_arguments", "forethought.evaluation.compare",
     "run_compare_from_args", "model-free vs model-based: every method on the same tasks, as the mission's table",
     "Evaluate a world model with MPC and goal-conditioned policies (forethought train-policy) on the\n"
     "same held-out tasks under the eval protocol, time one action of each at batch 1 with 1 and 2\n"
     "threads, and write compare.json and a markdown table with one section per row of the mission's\n"
     "table (cells that cannot be measured say why)."),
    ("latent-actions", "forethought.evaluation.latent_actions", "add_latent_actions_arguments",
     "forethought.evaluation.latent_actions", "run_latent_actions_from_args",
     "how well a pretrained run's latent actions match real actions (probe R², VQ code accuracy, controllability)",
     "Measure the latent actions of a `forethought pretrain` run against the real actions of a labelled\n"
     "dataset: a latent -> action map fitted on a few labelled transitions (200) and scored on others\n"
     "(probe R²; VQ: code -> action majority-mapping accuracy), and controllability (how much the\n"
     "prediction error rises when the latent actions are shuffled)."),
    ("surprise-calibrate", "forethought.surprise.arguments", "add_calibrate_arguments",
     "forethought.surprise.runner", "run_calibrate",
     "fit surprise normalization and alarm thresholds on held-out data",
     "Calibrate a model's surprise (its prediction error on new frames): how its residuals and latent\n"
     "dimensions spread on in-distribution data, and per horizon an alarm threshold for a target\n"
     "false-alarm rate, checked on clips not used to choose it. Saved as surprise.safetensors in the model folder."),
    ("surprise-eval", "forethought.surprise.arguments", "add_surprise_eval_arguments",
     "forethought.surprise.runner", "run_surprise_eval",
     "out-of-distribution detection and violation-of-expectation benchmarks",
     "Measure how well surprise flags the world changing: perturbed vs normal episodes generated\n"
     "with the environment (teleport, walls, dynamics, visuals): AUROC, FPR at 95% TPR, detection\n"
     "delay; and possible vs impossible clips (pairwise accuracy)."),
    ("surprise", "forethought.surprise.arguments", "add_surprise_plot_arguments",
     "forethought.surprise.runner", "run_surprise_plot",
     "draw the surprise timeline of one episode under its frames",
     "Draw the per-frame surprise of a dataset episode or a perturbed episode, with the alarm threshold."),
    ("scale", "forethought.evaluation.scale_arguments", "add_scale_arguments", "forethought.evaluation.scale_arguments",
     "run_scale_from_args",
     "success against planning compute and against wall-clock per decision, per planner configuration",
     "Inference-time scaling: evaluate planner configurations (eager, KV-cached fp32, bf16, compiled,\n"
     "speculative) on the same tasks at fixed samples x iterations and at wall-clock budgets per decision\n"
     "(anytime planning), and plot success against both. Writes scale.json and scale.png."),
    ("run", "forethought.online.arguments", "add_run_arguments", "forethought.online.runner", "run_from_args",
     "run the online agent: act, remember, update the model when the world changes",
     "Act in an environment episode after episode with a trained model: plan toward goal images,\n"
     "remember every episode (a crash-safe episode store, resumable), watch calibrated surprise with a\n"
     "CUSUM detector, and fine-tune the predictor on memory when surprise stays high (or on a schedule),\n"
     "keeping a new version only if held-out prediction error went down. --change-at changes the world\n"
     "mid-run (env kwargs, motor scale). Prints success per block of episodes; writes summary.json."),
    ("distill", "forethought.speculative.arguments", "add_distill_arguments",
     "forethought.speculative.arguments", "run_distill_from_args",
     "distill a small draft predictor for speculative rollouts",
     "Train a small draft predictor to imitate a world model's predictor in its own latent space\n"
     "(on the dataset's latents and the model's own rollouts). forethought.speculative.speculative_rollout\n"
     "drafts steps with it and verifies them with the model in one pass (speculative rollouts)."),
)


def _add_library_commands(sub: argparse._SubParsersAction) -> None:
    import importlib

    for name, options, add, module, run, help_text, description in _LIBRARY_COMMANDS:
        p = sub.add_parser(name, help=help_text, description=description, formatter_class=_Formatter)
        getattr(importlib.import_module(options), add)(p)
        p.set_defaults(func=_lazy(module, run))


# --------------------------------------------------------------------------- main
_COMMANDS: tuple[Callable[[argparse._SubParsersAction], None], ...] = (
    _add_envs,
    _add_collect,
    _add_minari,
    _add_library_commands,
)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="forethought",
        description="World models that plan: collect data, train a latent world model, plan with it.",
        epilog=EPILOG,
        formatter_class=_Formatter,
    )
    from forethought import __version__

    parser.add_argument("--version", action="version", version=f"forethought {__version__}")
    sub = parser.add_subparsers(title="commands", metavar="COMMAND", dest="command")
    for add in _COMMANDS:
        add(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra:  # reported by the command's own parser, so the message names the command
        commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        command_parser = commands.choices.get(getattr(args, "command", None) or "", parser)
        command_parser.error(f"unrecognized arguments: {' '.join(extra)}")
    if not hasattr(args, "func"):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except (ValueError, IndexError, FileNotFoundError, FileExistsError, NotADirectoryError, IsADirectoryError,
            PermissionError, ImportError) as err:
        # Library errors are written to be read by a person: show the message, not a traceback.
        print(error_message(getattr(args, "command", None), err), file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
