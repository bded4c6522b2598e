"""The command line's help: fast (no torch to print it), complete (defaults, learned-reward keys) and intact."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from rlgen.cli import main

ROOT = Path(__file__).resolve().parents[1]

HEAVY = ("torch", "stable_baselines3", "sb3_contrib", "tensorboard", "matplotlib")


def test_help_imports_no_torch():
    # In a fresh interpreter: the test session itself has long imported torch.
    script = (
        "import contextlib, io, sys\n"
        "from rlgen.cli import main\n"
        "for argv in (['--help'], ['train', '--help'], ['sweep', '--help'], ['eval', '--help'], ['demos', 'record', '--help']):\n"
        "    with contextlib.redirect_stdout(io.StringIO()):\n"
        "        try:\n"
        "            main(argv)\n"
        "        except SystemExit:\n"
        "            pass\n"
        f"print(sorted({{m.split('.')[0] for m in sys.modules}} & {set(HEAVY)!r}))\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "[]", out.stdout


def _help(argv: list[str], capsys) -> str:
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code in (0, None)
    return capsys.readouterr().out


def test_train_help_shows_defaults_and_the_learned_reward_keys(capsys):
    out = _help(["train", "--help"], capsys)
    assert "Discount factor. [float, in (0, 1]] (default: 0.99)" in " ".join(out.split())  # each key's range too
    assert "(default: Pendulum-v1)" in out and "(default: [64, 64])" in " ".join(out.split())
    assert 'kind = "gail"' in out and 'kind = "vime"' in out
    for key in ("--wrappers.I.demos", "--wrappers.I.n_episodes", "--wrappers.I.eta", "--wrappers.I.updates_per_rollout"):
        assert key in out, key
    assert "demos/hopper.npz" not in out  # examples name files that exist


def test_examples_name_files_that_exist(capsys):
    from rlgen.cli import EXAMPLES

    for word in EXAMPLES.split():
        if word.startswith(("agents/", "demos/")):
            assert (ROOT / word).exists(), word


def test_gen_train_help_has_one_intact_usage_block_and_the_recipes_defaults(capsys):
    assert main(["gen", "train", "dcgan", "--help"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0].startswith("usage: rlgen gen train") and sum(line.startswith("usage:") for line in lines) == 1
    assert not any(line.lstrip().startswith("[--") for line in lines), "orphaned usage continuation lines"
    assert "--resume RUN_DIR" in out and "--model.latent_dim" in out and "examples:" in out
    assert "(default: 30)" in " ".join(out.split())  # trainer.epochs of DCGAN's recipe, not the Trainer's own default


@pytest.mark.parametrize("argv", [["train"], ["eval", "runs/x", "--frobnicate"], ["demos", "info", "d.npz", "--frobnicate"]])
def test_usage_errors_exit_2_in_one_line(argv, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("rlgen: error: rlgen ") and "\n" not in err
