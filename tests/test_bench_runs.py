"""The benchmarks' run helper: a finished run is read back, and a larger budget extends it."""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from rlgen.rl.config import PolicyConfig, PPOConfig, TrainConfig

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
from common import run  # noqa: E402


def test_a_larger_budget_extends_a_finished_run_and_the_same_budget_reads_it_back(tmp_path):
    cfg = TrainConfig(env_id="Pendulum-v1", algo="ppo", total_timesteps=128, eval_episodes=0,
                      policy=PolicyConfig(net_arch=[8]), ppo=PPOConfig(n_steps=64, batch_size=32, n_epochs=1))
    first = run(cfg, tmp_path / "r")
    assert first["steps"] == 128
    model = tmp_path / "r" / "model.zip"
    written = model.stat().st_mtime_ns
    assert run(cfg, tmp_path / "r") == first and model.stat().st_mtime_ns == written  # read back, not retrained
    assert run(replace(cfg, total_timesteps=256), tmp_path / "r")["steps"] == 256


def test_a_fresh_evaluation_is_measured_once_per_final_model_and_differs_from_the_runs_own(tmp_path):
    from common import fresh_eval

    cfg = TrainConfig(env_id="Pendulum-v1", algo="ppo", total_timesteps=128, eval_episodes=2,
                      policy=PolicyConfig(net_arch=[8]), ppo=PPOConfig(n_steps=64, batch_size=32, n_epochs=1))
    summary = run(cfg, tmp_path / "r")
    first = fresh_eval(tmp_path / "r", 2)
    assert len(first["returns"]) == len(first["sampled_returns"]) == 2
    assert first["returns"] != summary["eval"]["returns"]  # other episodes than the run's own evaluation
    assert first["sampled_returns"] != first["returns"]
    cache = tmp_path / "r" / "bench_fresh_eval.json"
    written = cache.stat().st_mtime_ns
    assert fresh_eval(tmp_path / "r", 2) == first and cache.stat().st_mtime_ns == written  # read back
    run(replace(cfg, total_timesteps=256), tmp_path / "r")  # a new final model is measured again
    assert fresh_eval(tmp_path / "r", 2)["model_mtime"] != first["model_mtime"]
    assert len(fresh_eval(tmp_path / "r", 3)["returns"]) == 3


def test_seed_figures_average_only_the_metrics_every_seed_has():
    from seed_records import combine_runs

    runs = {"0": {"metrics": {"acc": 0.80}}, "1": {"metrics": {"acc": 0.81, "shared": 0.0}},
            "2": {"metrics": {"acc": 0.84, "shared": 1.0}}}
    mean, std = combine_runs(runs)
    assert mean == {"acc": pytest.approx(np.mean([0.80, 0.81, 0.84]))}  # "shared" is not every seed's
    assert std == {"acc": pytest.approx(np.std([0.80, 0.81, 0.84], ddof=1))}
    mean, std = combine_runs({"1": runs["1"]})
    assert mean == runs["1"]["metrics"] and std == {}


def test_the_iaf_gap_is_taken_per_epoch_over_the_seeds_that_have_both_posteriors():
    from iaf_curve import gaps

    def run(iaf, diag):
        return {"iaf": {"curves": {"nll": iaf, "elbo": [[e, -v] for e, v in iaf]}},
                "diagonal": {"curves": {"nll": diag, "elbo": [[e, -v] for e, v in diag]}}}

    runs = {"0": run([[5, 100.0], [10, 95.0]], [[5, 101.0], [10, 97.0]]),
            "1": run([[5, 102.0], [10, 96.0]], [[5, 102.5], [10, 97.0]]),
            "2": run([[5, 99.0]], [[5, 101.5]])}  # its 10-epoch evaluations not yet made
    nll = gaps(runs, "nll")
    assert [p["epoch"] for p in nll] == [5, 10]
    assert nll[0]["per_seed"] == {"0": 1.0, "1": 0.5, "2": 2.5}
    assert nll[0]["mean"] == pytest.approx(4.0 / 3) and nll[0]["std"] == pytest.approx(np.std([1.0, 0.5, 2.5], ddof=1))
    assert nll[1]["per_seed"] == {"0": 2.0, "1": 1.0}
    assert gaps(runs, "elbo") == nll  # an ELBO gap is the same difference the other way round (IAF's minus diagonal's)


def test_a_model_measured_at_a_new_budget_keeps_the_earlier_budgets_figures():
    from seed_records import with_earlier

    def entry(steps, acc):
        return {"budget": {"steps": steps, "epochs": steps / 600}, "seeds": [0], "metrics": {"accuracy": acc},
                "command": f"run {steps}", "runs": {"0": {"metrics": {"accuracy": acc}}}}

    first = with_earlier(entry(18000, 0.98), {})
    assert "earlier_budgets" not in first
    longer = with_earlier(entry(54000, 0.99), first)
    assert [e["budget"]["steps"] for e in longer["earlier_budgets"]] == [18000]
    assert longer["earlier_budgets"][0]["metrics"] == {"accuracy": 0.98} and "runs" not in longer["earlier_budgets"][0]
    # Another seed at the same budget keeps the history; going back to an earlier budget takes it out of it.
    assert with_earlier(entry(54000, 0.985), longer)["earlier_budgets"] == longer["earlier_budgets"]
    back = with_earlier(entry(18000, 0.97), longer)
    assert [e["budget"]["steps"] for e in back["earlier_budgets"]] == [54000]


def test_without_sample_figures_the_trainers_final_test_figures_are_read_not_recomputed(tmp_path):
    import json

    from images import evaluate

    (tmp_path / "summary.json").write_text(json.dumps({"steps": 10, "loss": 1.0, "test/nll": 89.5, "test/elbo": -95.5}))
    out = evaluate(tmp_path, n_samples=0, seed=0)  # no model files here: evaluate_run would fail
    assert out["metrics"] == {"nll": 89.5, "elbo": -95.5} and "summary.json" in out["source"]
    assert json.loads((tmp_path / "bench_eval.json").read_text())["metrics"] == out["metrics"]
