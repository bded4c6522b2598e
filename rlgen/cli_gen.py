"""The ``rlgen gen`` commands of the image models: train, sample, eval and complete."""

from __future__ import annotations

import argparse
import contextlib
from pathlib import Path
from typing import Any

from rlgen.cli_common import Parser, fmt, hold_for_resume, loading, no_extra, number_option, print_table, status
from rlgen.config_data import SEEDS

GEN_EXAMPLES = """\
examples:
  rlgen gen train dcgan                                     mnist5k with DCGAN's built-in recipe
  rlgen gen train vae --model.posterior iaf --trainer.epochs 50
  rlgen gen train improved_gan --data.labels_per_class 10   semi-supervised with 100 labels
  rlgen gen sample runs/dcgan --n 64
  rlgen gen eval runs/vae
  rlgen gen complete runs/pixelcnn
"""

GEN_TRAIN_USAGE = "rlgen gen train [MODEL | RECIPE.toml] [--resume RUN_DIR] [--data.* V] [--trainer.* V] [--model.* V]"


def _gen_train_options(p: argparse.ArgumentParser) -> None:
    """The options 'rlgen gen train' has before its model is known (its help adds the model's)."""
    p.add_argument("-h", "--help", action="store_true",
                   help="show this help; after MODEL, also its --data.*, --trainer.* and --model.* options and the recipe they change")
    p.add_argument("--resume", metavar="RUN_DIR", help="continue the run in RUN_DIR from its last checkpoint")


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
            hold_for_resume(run_dir, holding)
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
    p = Parser(prog="rlgen gen train", usage=GEN_TRAIN_USAGE, add_help=False,
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
        loading(args.run_dir)
    from rlgen.gen import run as gen

    if args.gen_command == "train":
        with contextlib.ExitStack() as holding:  # a resumed run's lock, from before its config.toml is read
            return _gen_train(args, extra, holding)
    no_extra(extra, f"rlgen gen {args.gen_command}")
    if args.gen_command == "sample":
        print(f"wrote {gen.sample_grid(args.run_dir, n=args.n, out=Path(args.out) if args.out else None, seed=args.seed)}")
    elif args.gen_command == "eval":
        metrics = gen.evaluate_run(args.run_dir, n_samples=args.samples, log=status)
        # A sample figure means little alone: show the real test images' own beside it.
        rows = [(k, f"{fmt(v)}  (real images: {fmt(metrics['real_' + k])})" if f"real_{k}" in metrics else v)
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


def add_gen_command(sub: Any) -> None:
    """Add ``gen`` (train, sample, eval, complete) to the subcommands ``sub`` of the ``rlgen`` parser."""
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
    number_option(p, "--n", ">= 1", default=64, help="number of samples")
    p.add_argument("--out", default=None, help="PNG to write (default RUN_DIR/samples-N.png)")
    number_option(p, "--seed", SEEDS, default=0, help="seed of the latents or pixels sampled")
    p.set_defaults(func=cmd_gen)
    p = gsub.add_parser("eval", help="test metrics: NLL (nats, bits/dim), accuracy, domain FID, classifier score")
    p.add_argument("run_dir")
    number_option(p, "--samples", ">= 0", default=1000, help="samples for FID and classifier score (0 skips them)")
    p.set_defaults(func=cmd_gen)
    p = gsub.add_parser("complete", help="complete the hidden lower half of test images (PixelCNN, PixelRNN)")
    p.add_argument("run_dir")
    number_option(p, "--images", ">= 1", default=8, help="test images")
    number_option(p, "--n", ">= 1", default=4, help="completions per image")
    p.add_argument("--out", default=None, help="PNG to write (default RUN_DIR/completions.png)")
    p.set_defaults(func=cmd_gen)
