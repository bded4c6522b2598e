"""The ``rlgen`` commands of the agents: train, sweep, eval, plot and demos."""

from __future__ import annotations

import argparse
import contextlib
from pathlib import Path
from typing import Any

from rlgen.cli_common import hold_for_resume, loading, no_extra, number_option, print_table, status
from rlgen.config_data import SEEDS
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


def _return_text(ev: dict) -> str:
    """An evaluation's mean return as the tables show it."""
    return f"{ev['mean_return']:.1f} ± {ev['std_return']:.1f} ({ev['episodes']} episodes)"


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
            hold_for_resume(run_dir, holding)
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
        if "sampled" in summary["eval"]:
            rows.append(("eval return, sampled actions", _return_text(summary["eval"]["sampled"])))
    if "expert_return" in summary:
        rows.append(("expert return", summary["expert_return"]))
    if "score" in summary:
        rows.append(("random-policy return", summary["random_return"]))
        rows.append(("score (expert 1, random 0)", f"{summary['score']:.2f}"))
        if "sampled_score" in summary:
            rows.append(("score, sampled actions", f"{summary['sampled_score']:.2f}"))
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
    no_extra(extra, "rlgen eval")
    loading(args.run_dir)
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
        status("measuring a random policy's return for the score ...")
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
            status(f"writing {len(frames)} frames to {args.video} ...")
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
    if not reasons:  # the same episodes and actions: only a change of policy, environment or libraries explains it
        from rlgen.core.distributed import resolve_device
        from rlgen.provenance import differences
        from rlgen.rl.agents import backend

        recorded = trained.get("provenance")
        changed = differences(recorded, str(resolve_device(cfg.device)) if backend(cfg) == "torch" else "jax:cpu") \
            if recorded else []
        if changed:
            reasons.append(f"the run's policy, environment or libraries changed since: {', '.join(changed)}")
        else:
            reasons.append("the run's policy or environment changed since (" + (
                "its libraries' versions are the same)" if recorded else "it predates rlgen's record of the versions it ran with)"))
    return "This differs from the training's final evaluation: " + "; ".join(reasons) + "."


def cmd_plot(args: argparse.Namespace, extra: list[str]) -> int:
    from rlgen.plot import plot_runs

    no_extra(extra, "rlgen plot")
    out = Path(args.out) if args.out else Path(args.run_dirs[0]) / "curves.png"
    print(f"wrote {plot_runs([Path(d) for d in args.run_dirs], out, title=args.title, tags=args.tags)}")
    return 0


def cmd_demos_record(args: argparse.Namespace, extra: list[str]) -> int:
    from rlgen.demos import record
    from rlgen.rl.run_dir import policy_from_run

    no_extra(extra, "rlgen demos record")
    loading(args.run_dir)
    policy, cfg = policy_from_run(args.run_dir, deterministic=not args.stochastic, best=args.best)
    demos = record(policy, cfg.env_id, env_kwargs=cfg.env_kwargs, episodes=args.episodes, seed=args.seed,
                   source=f"rlgen run {args.run_dir}{' (best)' if args.best else ''} ({cfg.algo})", min_return=args.min_return,
                   progress=not args.no_progress)
    path = demos.save(args.out)
    print_table(f"recorded {path}", demos.describe())
    return 0


def cmd_demos_info(args: argparse.Namespace, extra: list[str]) -> int:
    from rlgen.demos import Demonstrations

    no_extra(extra, "rlgen demos info")
    print_table(str(args.file), Demonstrations.load(args.file).describe())
    return 0


def cmd_demos_minari(args: argparse.Namespace, extra: list[str]) -> int:
    from rlgen.demos import Demonstrations
    from rlgen.demos.minari_io import from_minari, to_minari

    no_extra(extra, "rlgen demos")
    if args.demos_command == "to-minari":
        to_minari(Demonstrations.load(args.file), args.dataset_id, root=args.root)
        print(f"wrote Minari dataset {args.dataset_id}" + (f" under {args.root}" if args.root else ""))
    else:
        demos = from_minari(args.dataset_id, root=args.root)
        path = demos.save(args.out)
        print_table(f"converted {args.dataset_id} to {path}", demos.describe())
    return 0


def add_agent_commands(sub: Any) -> None:
    """Add ``train``, ``sweep``, ``eval`` and ``plot`` to the subcommands ``sub`` of the ``rlgen`` parser."""
    from rlgen.config import add_config_arguments, describe_variants
    from rlgen.rl.config import RewardWrapperConfig, TrainConfig

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
    number_option(p, "--seeds", ">= 1", default=3, help="seeds per grid point: 0..N-1")
    p.add_argument("--grid", action="append", metavar="KEY=V1,V2",
                   help="a recipe key and its values; repeat for a product grid")
    p.add_argument("--address", help="a running Ray cluster (auto, ray://HEAD:10001); default: a local Ray instance")
    number_option(p, "--cpus-per-trial", "> 0", default=1.0, kind=float, help="CPUs Ray reserves per trial")
    p.add_argument("--out", help="directory of the trials and the table (default: <run_root>/sweep-<recipe>)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_config_arguments(p, TrainConfig, title="recipe keys (each overrides the recipe for every trial)")
    p.set_defaults(func=cmd_sweep)

    p = sub.add_parser("eval", help="evaluate a trained run on the environment's own reward")
    p.add_argument("run_dir", help="a run directory written by 'rlgen train'")
    number_option(p, "--episodes", ">= 1", default=10, help="evaluation episodes")
    p.add_argument("--stochastic", action="store_true", help="sample actions instead of taking the mean")
    p.add_argument("--best", action="store_true", help="use the run's best evaluated policy (best/, kept when eval_every > 0)")
    number_option(p, "--seed", SEEDS, default=None, default_text="the run's", help="seed of the evaluation environment")
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


def add_demos_command(sub: Any) -> None:
    """Add ``demos`` (record, info, to-minari, from-minari) to the subcommands ``sub`` of the ``rlgen`` parser."""
    demos = sub.add_parser("demos", help="record and inspect demonstrations").add_subparsers(dest="demos_command", metavar="ACTION")
    demos.required = True
    p = demos.add_parser("record", help="roll out a trained run's policy and save its transitions")
    p.add_argument("run_dir", help="a run directory written by 'rlgen train' (the expert)")
    p.add_argument("--out", required=True, help="output file (.npz)")
    number_option(p, "--episodes", ">= 1", default=25, help="episodes to record")
    number_option(p, "--seed", SEEDS, default=0, help="seed of the first episode's reset")
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
