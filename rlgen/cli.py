"""The ``rlgen`` command line.

Each subcommand's options are generated from the config dataclass it runs,
so every recipe key can be overridden (``--ppo.learning_rate 1e-3``). Errors
a user can fix print one line and exit with status 2; ``--debug`` shows the
traceback instead. SIGINT and SIGTERM are not errors: a training run checkpoints,
prints the command that continues it, and exits with 130 or 143 as a shell would.
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import threading
from pathlib import Path
from typing import Any, Callable, Sequence

from rlgen.errors import UsageError

EXAMPLES = """\
examples:
  rlgen train agents/pendulum-ppo.toml                      train from a recipe (writes runs/pendulum-ppo/)
  rlgen train agents/hopper-trpo.toml --total_timesteps 2e5 --n_envs 2
  rlgen train agents/pendulum-gail.toml --wrappers.0.n_episodes 4   GAIL from 4 expert episodes
  rlgen train --resume runs/pendulum-ppo                    continue an interrupted run
  rlgen eval runs/pendulum-ppo --episodes 20                evaluate a finished run
  rlgen eval demos/experts/hopper-v5 --frames hopper.png --video hopper.gif
  rlgen demos record demos/experts/pendulum-v1 --episodes 25 --out pendulum.npz
  rlgen demos info demos/hopper-v5.npz
  rlgen plot runs/pendulum-gail runs/pendulum-ppo --out curves.png
  rlgen sweep agents/pendulum-ppo.toml --seeds 5 --grid ppo.learning_rate=1e-3,3e-4

Every recipe key is an option: 'rlgen train --help' lists them with their defaults.
"""

SWEEP_EXAMPLES = """\
examples:
  rlgen sweep agents/pendulum-ppo.toml --seeds 5                          five seeds, local Ray
  rlgen sweep agents/hopper-trpo.toml --grid trpo.learning_rate=1e-3,3e-4 --grid trpo.gamma=0.99,0.995
  rlgen sweep agents/ant-gail.toml --seeds 3 --address ray://head:10001   on a Ray cluster
"""


GEN_EXAMPLES = """\
examples:
  rlgen gen train dcgan                                     mnist5k with DCGAN's built-in recipe
  rlgen gen train vae --model.posterior iaf --trainer.epochs 50
  rlgen gen train improved_gan --data.labels_per_class 10   semi-supervised with 100 labels
  rlgen gen sample runs/dcgan --n 64
  rlgen gen eval runs/vae
  rlgen gen complete runs/pixelcnn
"""


def _fmt(x: Any) -> str:
    if isinstance(x, float):
        return f"{x:,.1f}" if abs(x) >= 100 else f"{x:.3g}"
    if isinstance(x, int):
        return f"{x:,}"
    return str(x)


def print_table(title: str, rows: Sequence[tuple[str, Any]], out: Callable[[str], None] = print) -> None:
    """A two-column table: what a run or an evaluation measured."""
    width = max(len(k) for k, _ in rows)
    out(f"\n{title}")
    out("-" * (width + 2 + max(len(_fmt(v)) for _, v in rows)))
    for key, value in rows:
        out(f"{key:<{width}}  {_fmt(value)}")


def _return_text(ev: dict) -> str:
    return f"{ev['mean_return']:.1f} ± {ev['std_return']:.1f} ({ev['episodes']} episodes)"


def _status(message: str) -> None:
    """Say what a command is doing before a wait (stderr, beside the progress bars; stdout keeps the tables)."""
    print(message, file=sys.stderr, flush=True)


def _loading(run_dir: str) -> None:
    """Say that a run is being loaded (torch and the agent take seconds), if it is one: a path that
    is not gets its one-line error alone."""
    if (Path(run_dir) / "config.toml").is_file():
        _status(f"loading {run_dir} ...")


def _no_extra(extra: list[str], command: str) -> None:
    if extra:
        raise UsageError(f"{command}: unrecognised arguments {' '.join(extra)}; see '{command} --help'")


# -------------------------------------------------------------------- commands


def _hold_for_resume(run_dir: Path, holding: contextlib.ExitStack) -> None:
    """Be the one writer of a run directory about to be resumed, before its config.toml is read
    back, checked against the overrides or written: a second process is refused in one line and
    changes nothing. A directory without config.toml is left to the caller's own one-line error."""
    from rlgen.runs import CONFIG, hold_run

    if (run_dir / CONFIG).is_file():
        holding.enter_context(hold_run(run_dir))


def cmd_train(args: argparse.Namespace, extra: list[str]) -> int:
    from rlgen.config import apply_overrides, check_resume_overrides, load_recipe, overrides_from_namespace
    from rlgen.rl.config import RESUMABLE, TrainConfig
    from rlgen.rl.train import train
    from rlgen.runs import load_run_config, save_config

    overrides = overrides_from_namespace(args, extra)
    with contextlib.ExitStack() as holding:
        if args.resume:
            from rlgen.errors import ConfigError
            from rlgen.rl.run_dir import steps_done

            run_dir = Path(args.resume)
            _hold_for_resume(run_dir, holding)
            saved = load_run_config(run_dir, TrainConfig)
            cfg = apply_overrides(saved, overrides)
            # Every check before config.toml is written: a refused override must leave the run as it was.
            check_resume_overrides(saved, cfg, can_change=RESUMABLE, run=run_dir)
            done = steps_done(run_dir)
            if cfg.total_timesteps < done:
                raise ConfigError(f"total_timesteps {cfg.total_timesteps:,} is below the {done:,} steps {run_dir} "
                                  f"has done; give {done:,} or more")
            save_config(run_dir, cfg)
        else:
            if args.recipe is None:
                raise UsageError("rlgen train: give a RECIPE (a .toml file, see agents/) or --resume RUN_DIR")
            cfg = apply_overrides(load_recipe(TrainConfig, args.recipe), overrides)
            run_dir = None
        summary = train(cfg, run_dir=run_dir, resume=bool(args.resume), progress=not args.no_progress)
    rows = [("run", summary["run_dir"]), ("env", summary["env_id"]), ("algo", summary["algo"]),
            ("steps", summary["steps"]), ("wall time (s)", summary["wall_time_s"]),
            ("steps/s", summary["steps_per_s"])]
    if "eval" in summary:
        rows.append(("eval return", _return_text(summary["eval"])))
    if "expert_return" in summary:
        rows.append(("expert return", summary["expert_return"]))
    if "score" in summary:
        rows.append(("random-policy return", summary["random_return"]))
        rows.append(("score (expert 1, random 0)", f"{summary['score']:.2f}"))
    print_table("training finished", rows)
    return 0


def cmd_sweep(args: argparse.Namespace, extra: list[str]) -> int:
    from rlgen.config import apply_overrides, load_recipe, overrides_from_namespace
    from rlgen.rl.config import TrainConfig
    from rlgen.sweep import format_table, parse_grid, sweep

    grid = parse_grid(args.grid or [])
    cfg = apply_overrides(load_recipe(TrainConfig, args.recipe), overrides_from_namespace(args, extra))
    out = Path(args.out) if args.out else Path(cfg.run_root) / f"sweep-{Path(args.recipe).stem}"
    results = sweep(cfg, grid, seeds=args.seeds, out=out, address=args.address,
                    cpus_per_trial=args.cpus_per_trial, progress=not args.no_progress)
    print()
    print(format_table(results))
    print(f"\nwrote {out / 'sweep.json'}, {out / 'sweep.csv'} and {out / 'sweep.png'}")
    return 1 if any(r["error"] for r in results["trials"]) else 0


def cmd_eval(args: argparse.Namespace, extra: list[str]) -> int:
    _no_extra(extra, "rlgen eval")
    _loading(args.run_dir)
    from rlgen.rl.evaluate import EVAL_SEED_OFFSET, imitation_score
    from rlgen.rl.run_dir import evaluate_run
    from rlgen.runs import load_summary

    run_dir = Path(args.run_dir)
    cfg, model_path, result = evaluate_run(run_dir, episodes=args.episodes, seed=args.seed,
                                           deterministic=not args.stochastic, best=args.best, progress=True)
    trained = load_summary(run_dir)
    # The same rows as the training table, so the two read side by side.
    rows = [("env", cfg.env_id), ("algo", cfg.algo), ("eval return", _return_text(result)),
            ("mean length", result["mean_length"]),
            ("episodes", f"{result['episodes']} of a fresh env seeded {cfg.seed + EVAL_SEED_OFFSET}, "
                         f"{'sampled' if args.stochastic else 'mean'} actions")]
    scored = {"eval": result, "expert_return": trained["expert_return"]} if "expert_return" in trained else {}
    if scored:
        _status("measuring a random policy's return for the score ...")
        imitation_score(scored, cfg)
        rows += [("expert return", scored["expert_return"]), ("random-policy return", scored["random_return"]),
                 ("score (expert 1, random 0)", f"{scored['score']:.2f}")]
    if "eval" in trained and not args.best:
        rows.append(("training's final eval", _return_text(trained["eval"])))
    if args.frames or args.video:
        from rlgen.rl.run_dir import policy_from_run
        from rlgen.rl.render import episode_frames, save_gif, save_strip

        policy, _ = policy_from_run(run_dir, deterministic=not args.stochastic, best=args.best)
        frames, total = episode_frames(policy, cfg.env_id, env_kwargs=cfg.env_kwargs, seed=cfg.seed + EVAL_SEED_OFFSET,
                                       progress=True)
        if args.frames:
            rows.append(("frames", str(save_strip(frames, args.frames))))
        if args.video:
            _status(f"writing {len(frames)} frames to {args.video} ...")
            rows.append(("video", str(save_gif(frames, args.video))))
        rows.append(("rendered episode return", total))
    print_table(f"evaluation of {model_path}", rows)
    if "eval" in trained and not args.best and trained["eval"].get("returns") != result["returns"]:
        print(f"\n{_why_evaluations_differ(cfg, args, trained)}")
    return 0


def _why_evaluations_differ(cfg: Any, args: argparse.Namespace, trained: dict) -> str:
    """Why 'rlgen eval' and the training's final evaluation (in ``trained``, the run's summary)
    report different returns for one policy."""
    final, reasons = trained["eval"], []
    if args.seed is not None and args.seed != trained.get("seed"):
        reasons.append(f"--seed {args.seed} picks other episodes")
    if args.episodes != final["episodes"]:
        reasons.append(f"it ran {final['episodes']} episodes, this {args.episodes}")
    if args.stochastic:
        reasons.append("these actions are sampled, its were the mean")
    if not reasons:  # the same episodes and actions: only a change of policy or environment explains it
        reasons.append("the run's policy or environment changed since")
    return "This differs from the training's final evaluation: " + "; ".join(reasons) + "."


def cmd_plot(args: argparse.Namespace, extra: list[str]) -> int:
    from rlgen.plot import plot_runs

    _no_extra(extra, "rlgen plot")
    out = Path(args.out) if args.out else Path(args.run_dirs[0]) / "curves.png"
    print(f"wrote {plot_runs([Path(d) for d in args.run_dirs], out, title=args.title, tags=args.tags)}")
    return 0


def _gen_train(args: argparse.Namespace, extra: list[str], holding: contextlib.ExitStack) -> int:
    """``rlgen gen train``; a resumed run directory is held in ``holding``."""
    from rlgen.config import add_config_arguments, apply_overrides, overrides_from_namespace
    from rlgen.core.distributed import launch_rank
    from rlgen.gen.base import GenConfig
    from rlgen.gen import run as gen

    args.model = extra.pop(0) if extra and not extra[0].startswith("-") else "dcgan"
    first = launch_rank() == 0  # under torchrun, rank 0 speaks for the run and alone writes its directory
    if args.resume:
        run_dir = Path(args.resume)
        if first and not args.help:
            _hold_for_resume(run_dir, holding)
        cfg = (gen.load_gen_recipe(run_dir / "config.toml", paths_from_recipe=False)
               if (run_dir / "config.toml").is_file() else None)
        if cfg is None:
            from rlgen.errors import RlgenError

            raise RlgenError(f"{run_dir} is not an image-model run (no config.toml); pass a directory made by 'rlgen gen train'")
    elif args.model.endswith(".toml") or Path(args.model).is_dir():
        cfg, run_dir = gen.load_gen_recipe(args.model), None
    else:
        cfg, run_dir = gen.default_config(args.model), None
    # Options for the chosen model's own keys exist only once the model is known; the help
    # shows them with this recipe's values as defaults.
    p = argparse.ArgumentParser(prog="rlgen gen train", usage=GEN_TRAIN_USAGE, add_help=False,
                                epilog=GEN_EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    _gen_train_options(p)
    add_config_arguments(p, GenConfig, title="run keys", defaults=cfg)
    add_config_arguments(p, type(cfg.model), title=f"{cfg.model.kind} options", prefix="model.", defaults=cfg.model)
    if args.help:
        from rlgen.config import to_toml

        print(p.format_help())
        print(f"the recipe these options change ({cfg.model.kind}'s defaults, as config.toml will hold it):\n")
        print(to_toml(cfg))
        return 0
    ns, rest = p.parse_known_args(extra)
    saved, cfg = cfg, apply_overrides(cfg, overrides_from_namespace(ns, rest))
    if run_dir is not None:
        from rlgen.config import check_resume_overrides
        from rlgen.gen.base import GEN_RESUMABLE
        from rlgen.runs import save_config

        check_resume_overrides(saved, cfg, can_change=GEN_RESUMABLE, run=run_dir)  # before config.toml is written
        if first:
            save_config(run_dir, cfg)
    summary = gen.train_gen(cfg, run_dir=run_dir, resume=bool(args.resume))
    if first:
        print_table("training finished", [(k, v) for k, v in summary.items() if isinstance(v, (int, float, str))])
    return 0


def cmd_gen(args: argparse.Namespace, extra: list[str]) -> int:
    if args.gen_command != "train":
        _loading(args.run_dir)
    from rlgen.gen import run as gen

    if args.gen_command == "train":
        with contextlib.ExitStack() as holding:  # a resumed run's lock, from before its config.toml is read
            return _gen_train(args, extra, holding)
    _no_extra(extra, f"rlgen gen {args.gen_command}")
    if args.gen_command == "sample":
        print(f"wrote {gen.sample_grid(args.run_dir, n=args.n, out=Path(args.out) if args.out else None, seed=args.seed)}")
    elif args.gen_command == "eval":
        metrics = gen.evaluate_run(args.run_dir, n_samples=args.samples, log=_status)
        # A sample figure means little alone: show the real test images' own beside it.
        rows = [(k, f"{_fmt(v)}  (real images: {_fmt(metrics['real_' + k])})" if f"real_{k}" in metrics else v)
                for k, v in sorted(metrics.items()) if not k.startswith("real_")]
        print_table(f"evaluation of {args.run_dir}", rows)
        if "real_domain_fid" in metrics:
            print("\nreal images: domain_fid of one half of the test images against the other (what a perfect "
                  "model scores;\nlower is better), classifier_score of the test images (the most samples "
                  "should reach; higher is better).")
        confusion = gen.confusion_plot(args.run_dir)  # a classifier's or InfoGAN's codes against the labels
        if confusion:
            print(f"\nwrote {confusion} (each label's test images by the class or code they are given)")
    elif args.gen_command == "complete":
        print(f"wrote {gen.complete_run(args.run_dir, n_images=args.images, n_samples=args.n, out=Path(args.out) if args.out else None)}")
    return 0


def cmd_demos_record(args: argparse.Namespace, extra: list[str]) -> int:
    from rlgen.demos import record
    from rlgen.rl.run_dir import policy_from_run

    _no_extra(extra, "rlgen demos record")
    _loading(args.run_dir)
    policy, cfg = policy_from_run(args.run_dir, deterministic=not args.stochastic, best=args.best)
    demos = record(policy, cfg.env_id, env_kwargs=cfg.env_kwargs, episodes=args.episodes, seed=args.seed,
                   source=f"rlgen run {args.run_dir}{' (best)' if args.best else ''} ({cfg.algo})", min_return=args.min_return,
                   progress=not args.no_progress)
    path = demos.save(args.out)
    print_table(f"recorded {path}", demos.describe())
    return 0


def cmd_demos_info(args: argparse.Namespace, extra: list[str]) -> int:
    from rlgen.demos import Demonstrations

    _no_extra(extra, "rlgen demos info")
    print_table(str(args.file), Demonstrations.load(args.file).describe())
    return 0


def cmd_demos_minari(args: argparse.Namespace, extra: list[str]) -> int:
    from rlgen.demos import Demonstrations
    from rlgen.demos.minari_io import from_minari, to_minari

    _no_extra(extra, "rlgen demos")
    if args.demos_command == "to-minari":
        to_minari(Demonstrations.load(args.file), args.dataset_id, root=args.root)
        print(f"wrote Minari dataset {args.dataset_id}" + (f" under {args.root}" if args.root else ""))
    else:
        demos = from_minari(args.dataset_id, root=args.root)
        path = demos.save(args.out)
        print_table(f"converted {args.dataset_id} to {path}", demos.describe())
    return 0


# ---------------------------------------------------------------------- parser

GEN_TRAIN_USAGE = "rlgen gen train [MODEL | RECIPE.toml] [--resume RUN_DIR] [--data.* V] [--trainer.* V] [--model.* V]"


def _gen_train_options(p: argparse.ArgumentParser) -> None:
    """The options 'rlgen gen train' has before its model is known (its help adds the model's)."""
    p.add_argument("-h", "--help", action="store_true",
                   help="show this help; after MODEL, also its --data.*, --trainer.* and --model.* options and the recipe they change")
    p.add_argument("--resume", metavar="RUN_DIR", help="continue the run in RUN_DIR from its last checkpoint")



def build_parser() -> argparse.ArgumentParser:
    from rlgen.config import add_config_arguments, describe_variants
    from rlgen.rl.config import RewardWrapperConfig, TrainConfig

    parser = argparse.ArgumentParser(
        prog="rlgen",
        description="Reinforcement learning with learned rewards (GAIL, VIME) and generative models.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks instead of one-line errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("train", help="train an agent from a TOML recipe", epilog=EXAMPLES,
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       usage="rlgen train [RECIPE] [--resume RUN_DIR] [--no-progress] [--KEY V ...] [--wrappers.I.KEY V ...]")
    p.add_argument("recipe", nargs="?", help="recipe file (agents/*.toml)")
    p.add_argument("--resume", metavar="RUN_DIR", help="continue the run in RUN_DIR from its latest checkpoint")
    p.add_argument("--no-progress", action="store_true", help="no progress bar (for logs and CI)")
    add_config_arguments(p, TrainConfig, title="recipe keys (each overrides the recipe; the defaults shown apply "
                                               "where the recipe does not set the key)")
    p.add_argument_group("learned-reward keys (--wrappers.I.KEY V sets KEY of the recipe's I-th [[wrappers]] table, "
                         "counting from 0)", description=describe_variants(RewardWrapperConfig, prefix="wrappers.I."))
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("sweep", help="seeds x a grid of recipe keys, run in parallel through Ray",
                       epilog=SWEEP_EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("recipe", help="recipe file (agents/*.toml)")
    p.add_argument("--seeds", type=int, default=3, help="seeds per grid point: 0..N-1 (default 3)")
    p.add_argument("--grid", action="append", metavar="KEY=V1,V2",
                   help="a recipe key and its values; repeat for a product grid")
    p.add_argument("--address", help="a running Ray cluster (auto, ray://HEAD:10001); default: a local Ray instance")
    p.add_argument("--cpus-per-trial", type=float, default=1.0, help="CPUs Ray reserves per trial (default 1)")
    p.add_argument("--out", help="directory of the trials and the table (default: <run_root>/sweep-<recipe>)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_config_arguments(p, TrainConfig, title="recipe keys (each overrides the recipe for every trial)")
    p.set_defaults(func=cmd_sweep)

    p = sub.add_parser("eval", help="evaluate a trained run on the environment's own reward")
    p.add_argument("run_dir", help="a run directory written by 'rlgen train'")
    p.add_argument("--episodes", type=int, default=10, help="evaluation episodes (default 10)")
    p.add_argument("--stochastic", action="store_true", help="sample actions instead of taking the mean")
    p.add_argument("--best", action="store_true", help="use the run's best evaluated policy (best/, kept when eval_every > 0)")
    p.add_argument("--seed", type=int, default=None, help="seed of the evaluation environment")
    p.add_argument("--frames", metavar="PNG", default=None, help="write a strip of 8 frames of one episode")
    p.add_argument("--video", metavar="GIF", default=None, help="write one episode as an animated GIF")
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("plot", help="learning curves of one or more runs on one PNG")
    p.add_argument("run_dirs", nargs="+", metavar="RUN_DIR", help="run directories written by 'rlgen train'")
    p.add_argument("--out", default=None, help="PNG to write (default: RUN_DIR/curves.png of the first run)")
    p.add_argument("--title", default=None, help="figure title (default: the runs' names)")
    p.add_argument("--tags", nargs="+", default=[], metavar="TAG",
                   help="more TensorBoard scalars to draw, shell patterns allowed (e.g. 'episode/x_position_max')")
    p.set_defaults(func=cmd_plot)

    gen = sub.add_parser("gen", help="generative image models: train, sample, eval, complete",
                         epilog=GEN_EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    gsub = gen.add_subparsers(dest="gen_command", metavar="ACTION")
    gsub.required = True
    p = gsub.add_parser("train", help="train an image model from its built-in recipe or a TOML file",
                        epilog=GEN_EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter, add_help=False,
                        usage=GEN_TRAIN_USAGE)
    # MODEL is read by cmd_gen from what argparse leaves, so that options after it whose
    # values look like positionals ('--trainer.max_steps 5') are never taken for it.
    _gen_train_options(p)
    p.set_defaults(func=cmd_gen)
    p = gsub.add_parser("sample", help="a PNG grid of samples from a trained run")
    p.add_argument("run_dir")
    p.add_argument("--n", type=int, default=64, help="number of samples (default 64)")
    p.add_argument("--out", default=None, help="PNG to write (default RUN_DIR/samples-N.png)")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=cmd_gen)
    p = gsub.add_parser("eval", help="test metrics: NLL (nats, bits/dim), accuracy, domain FID, classifier score")
    p.add_argument("run_dir")
    p.add_argument("--samples", type=int, default=1000, help="samples for FID and classifier score (default 1000; 0 skips them)")
    p.set_defaults(func=cmd_gen)
    p = gsub.add_parser("complete", help="complete the hidden lower half of test images (PixelCNN, PixelRNN)")
    p.add_argument("run_dir")
    p.add_argument("--images", type=int, default=8, help="test images (default 8)")
    p.add_argument("--n", type=int, default=4, help="completions per image (default 4)")
    p.add_argument("--out", default=None, help="PNG to write (default RUN_DIR/completions.png)")
    p.set_defaults(func=cmd_gen)

    demos = sub.add_parser("demos", help="record and inspect demonstrations").add_subparsers(dest="demos_command", metavar="ACTION")
    demos.required = True
    p = demos.add_parser("record", help="roll out a trained run's policy and save its transitions")
    p.add_argument("run_dir", help="a run directory written by 'rlgen train' (the expert)")
    p.add_argument("--out", required=True, help="output file (.npz)")
    p.add_argument("--episodes", type=int, default=25, help="episodes to record (default 25)")
    p.add_argument("--seed", type=int, default=0, help="seed of the first episode's reset")
    p.add_argument("--min-return", type=float, default=None, help="keep only episodes reaching this return")
    p.add_argument("--stochastic", action="store_true", help="sample actions instead of taking the mean")
    p.add_argument("--best", action="store_true", help="use the run's best evaluated policy (best/, kept when eval_every > 0)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_demos_record)
    p = demos.add_parser("info", help="describe a demonstration file")
    p.add_argument("file", help="a .npz demonstration file")
    p.set_defaults(func=cmd_demos_info)
    p = demos.add_parser("to-minari", help="write a demonstration file as a local Minari dataset")
    p.add_argument("file", help="a .npz demonstration file")
    p.add_argument("dataset_id", help="Minari dataset id, e.g. rlgen/hopper-expert-v0")
    p.add_argument("--root", default=None, help="datasets directory (default: Minari's, MINARI_DATASETS_PATH)")
    p.set_defaults(func=cmd_demos_minari)
    p = demos.add_parser("from-minari", help="convert a local Minari dataset to a demonstration file")
    p.add_argument("dataset_id", help="id of a Minari dataset already on this machine")
    p.add_argument("--out", required=True, help="output file (.npz)")
    p.add_argument("--root", default=None, help="datasets directory (default: Minari's, MINARI_DATASETS_PATH)")
    p.set_defaults(func=cmd_demos_minari)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from rlgen.errors import Interrupted, RlgenError

    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    try:
        return args.func(args, extra)
    except Interrupted as e:  # not an error: say where the run stands and how to go on
        if argv is None:  # the program itself, not a caller in Python that keeps its own handlers
            _ignore_signals()
        print(f"rlgen: {e}", file=sys.stderr)
        return e.exit_code
    except RlgenError as e:
        if args.debug:
            raise
        print(f"rlgen: error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:  # Ctrl-C outside a training loop (loading, evaluating): nothing to keep
        if args.debug:
            raise
        if argv is None:
            _ignore_signals()
        print("rlgen: interrupted", file=sys.stderr)
        return 128 + signal.SIGINT


def _ignore_signals() -> None:
    """Once a command has been stopped, a signal repeated while Python shuts down (which takes a
    while after torch) would end it with a KeyboardInterrupt instead of the status decided."""
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, signal.SIG_IGN)


if __name__ == "__main__":
    sys.exit(main())
