"""Smoke runs of every 'rlgen gen' command on tiny budgets (8x8 digits)."""

from __future__ import annotations

import json

import pytest
from PIL import Image

from rlgen.cli import main

TINY = ["--data.dataset", "digits", "--trainer.max_steps", "3", "--trainer.epochs", "1", "--trainer.batch_size", "16",
        "--trainer.sample_every", "0", "--trainer.progress", "false"]


@pytest.mark.parametrize("kind", ["dcgan", "improved_gan", "infogan", "vae", "pixelcnn", "pixelrnn"])
def test_train_sample_every_model(kind, tmp_path, capsys):
    assert main(["gen", "train", kind, "--run_root", str(tmp_path), *TINY]) == 0
    run = tmp_path / kind
    assert json.loads((run / "summary.json").read_text())["steps"] == 3
    assert (run / "config.toml").is_file() and (run / "checkpoints" / "last.pt").is_file()
    assert main(["gen", "sample", str(run), "--n", "4", "--out", str(tmp_path / "s.png")]) == 0
    assert Image.open(tmp_path / "s.png").size[0] >= 16


def test_supervised_only_baseline_trains_with_sample_grids_on(tmp_path, capsys):
    """It has no generator: the Trainer's periodic sample grid is skipped, not an error."""
    tiny = [a if a != "0" or TINY[i - 1] != "--trainer.sample_every" else "1" for i, a in enumerate(TINY)]
    assert main(["gen", "train", "improved_gan", "--model.supervised_only", "true", "--run_root", str(tmp_path),
                 *tiny]) == 0
    assert json.loads((tmp_path / "improved_gan" / "summary.json").read_text())["steps"] == 3


def test_eval_and_complete_and_resume(tmp_path, capsys):
    assert main(["gen", "train", "pixelcnn", "--run_root", str(tmp_path), *TINY]) == 0
    run = tmp_path / "pixelcnn"
    assert main(["gen", "complete", str(run), "--images", "2", "--n", "2", "--out", str(tmp_path / "c.png")]) == 0
    assert Image.open(tmp_path / "c.png").size[0] > Image.open(tmp_path / "c.png").size[1]
    capsys.readouterr()
    assert main(["gen", "eval", str(run), "--samples", "16"]) == 0
    captured = capsys.readouterr()
    assert "bits_per_dim" in captured.out and "domain_fid" in captured.out
    assert "(real images: " in captured.out  # each sample figure beside the real test images' own
    # The first evaluation trains the domain classifier: announced, with a progress bar over its epochs.
    assert "training the digits domain classifier" in captured.err and "10/10" in captured.err
    assert main(["gen", "eval", str(run), "--samples", "0"]) == 0  # the model's own test figures only
    captured = capsys.readouterr()
    assert "bits_per_dim" in captured.out and "domain_fid" not in captured.out
    assert "confusion" not in captured.out and not (run / "confusion.png").exists()  # it assigns no class
    assert main(["gen", "train", "--resume", str(run), "--trainer.max_steps", "5"]) == 0
    assert json.loads((run / "summary.json").read_text())["steps"] == 5


@pytest.mark.parametrize("kind", ["infogan", "improved_gan"])
def test_eval_draws_the_labels_against_the_classes_or_codes_the_model_gives(kind, tmp_path, capsys):
    assert main(["gen", "train", kind, "--run_root", str(tmp_path), *TINY]) == 0
    run = tmp_path / kind
    assert main(["gen", "eval", str(run), "--samples", "0"]) == 0
    assert f"wrote {run / 'confusion.png'}" in capsys.readouterr().out
    assert Image.open(run / "confusion.png").size[0] > 200


def test_help_after_a_model_lists_its_own_options_and_defaults(capsys):
    assert main(["gen", "train", "vae", "--help"]) == 0
    out = capsys.readouterr().out
    assert "--model.posterior" in out and "--trainer.epochs" in out and "--data.binarize" in out
    assert 'kind = "vae"' in out and 'binarize = "dynamic"' in out


def test_gen_errors_are_one_line(tmp_path, capsys):
    assert main(["gen", "train", "nosuchmodel", "--run_root", str(tmp_path)]) == 2
    assert main(["gen", "train", "dcgan", "--run_root", str(tmp_path), "--model.nope", "1"]) == 2
    assert main(["gen", "train", "dcgan", "--run_root", str(tmp_path), "--data.dataset", "mnist",
                 "--data.data_dir", str(tmp_path / "missing")]) == 2
    assert main(["gen", "complete", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 4 and all(line.startswith("rlgen: error: ") for line in err)


def test_a_run_directory_the_caller_names_is_made_when_it_does_not_exist(tmp_path):
    from rlgen.config import apply_overrides
    from rlgen.gen.run import default_config, train_gen

    cfg = apply_overrides(default_config("dcgan"), {"data.dataset": "digits", "trainer.max_steps": 2, "trainer.epochs": 1,
                                                    "trainer.batch_size": 16, "trainer.progress": False})
    run_dir = tmp_path / "not" / "yet"
    train_gen(cfg, run_dir=run_dir)
    assert (run_dir / "summary.json").is_file()
