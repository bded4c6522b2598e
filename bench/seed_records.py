"""A benchmark entry's runs over seeds and budgets: the mean and spread of each metric over seeds, the
seeds an earlier invocation measured, and the figures of earlier budgets, kept when a model is measured
again at another. Used by ``bench/images.py``; the records are plain JSON dicts.
"""

from __future__ import annotations

import statistics
from typing import Any


def over_seeds(entry: dict[str, Any], *keys: str) -> dict[str, Any]:
    """Mean, standard deviation and per-seed values of some metrics of a model's runs. A metric only
    some runs have gets its per-seed values and the seeds they are from, without a mean."""
    runs = entry["runs"]
    out: dict[str, Any] = {"seeds": [int(s) for s in runs]}
    for key in keys:
        values = [r["metrics"][key] for r in runs.values() if key in r["metrics"]]
        if len(values) == len(runs):
            out[key] = {"mean": statistics.fmean(values), "std": statistics.stdev(values) if len(values) > 1 else 0.0,
                        "per_seed": values}
        elif values:
            out[key] = {"per_seed": values, "seeds": [int(s) for s, r in runs.items() if key in r["metrics"]]}
    return out


#: What an entry written before ``--seeds`` held about its one run.
_RUN_KEYS = ("run_dir", "metrics", "train_wall_time_s", "eval_wall_time_s", "train_images_per_s",
             "test_accuracy_curve", "cat_accuracy_curve", "samples_png", "completions_png")


def earlier_runs(entry: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """A model's per-seed runs from its entry in the results file, of either format."""
    if "runs" in entry:
        return dict(entry["runs"])
    if "seed" in entry and "metrics" in entry:  # one seed, recorded at the entry's top level
        return {str(entry["seed"]): {k: entry[k] for k in _RUN_KEYS if k in entry}}
    return {}


#: What an entry keeps of a budget it was measured at before (``earlier_budgets``).
_EARLIER_KEYS = ("budget", "seeds", "metrics", "metrics_std", "train_wall_time_s", "command", "measured_on")


def with_earlier(entry: dict[str, Any], old: dict[str, Any]) -> dict[str, Any]:
    """``entry``, a model's new record, keeping what ``old`` (its record so far) measured at another
    budget in ``earlier_budgets``, newest last, so a longer run does not erase a shorter one's figures."""
    earlier = list(old.get("earlier_budgets", []))
    if old.get("metrics") and old.get("budget", {}).get("steps") != entry["budget"]["steps"]:
        earlier.append({k: old[k] for k in _EARLIER_KEYS if k in old})
    earlier = [e for e in earlier if e["budget"]["steps"] != entry["budget"]["steps"]]
    return entry | {"earlier_budgets": earlier} if earlier else entry


def combine_runs(runs: dict[str, dict[str, Any]]) -> tuple[dict[str, float], dict[str, float]]:
    """The mean and (with two or more seeds) standard deviation of every metric each of a model's
    runs has. A metric some runs lack (one added to the evaluation after they ran) stays in the runs'
    own records: a mean over the others would pass for all the seeds'."""
    keys = sorted(set.intersection(*(set(r["metrics"]) for r in runs.values())))
    mean, std = {}, {}
    for key in keys:
        values = [r["metrics"][key] for r in runs.values()]
        mean[key] = statistics.fmean(values)
        if len(values) > 1:
            std[key] = statistics.stdev(values)
    return mean, std


__all__ = ["combine_runs", "earlier_runs", "over_seeds", "with_earlier"]
