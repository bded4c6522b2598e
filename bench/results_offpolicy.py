"""The RESULTS.md sections of off-policy imitation (bench/offpolicy_imitation.py) and of the
README's first command (bench/first_command.py), rendered by bench/results_md.py."""

from __future__ import annotations

import statistics

#: How each method of bench/offpolicy_imitation.py is named in the tables.
TITLES = {
    "rlgen": "TQC/SAC + discriminator, 10 episodes (Pendulum 25)",
    "rlgen-1-episode": "TQC/SAC + discriminator, 1 episode",
    "states-only": "states only (s, s'), 10 episodes",
    "no-expert-mixing": "no demonstration rows in the learner's batches, 10 episodes",
    "sqil": "SQIL on the same learner, 10 episodes (Pendulum 25)",
    "bc": "behaviour cloning, 10 episodes (Pendulum 25)",
}


def _fmt(x: float | None, digits: int = 2) -> str:
    return "–" if x is None else f"{x:,.{digits}f}"


def _mean_std(values: list[float], digits: int = 2) -> str:
    if not values:
        return "–"
    if len(values) == 1:
        return _fmt(values[0], digits)
    return f"{_fmt(statistics.mean(values), digits)} ± {_fmt(statistics.stdev(values), digits)}"


def _steps(n: int | None) -> str:
    return "never" if n is None else f"{n / 1e3:.0f}k"


def offpolicy_section(d: dict, provenance, table) -> list[str]:
    """Per task: each method's seeds, steps to 0.9, final scores on fresh episodes and time; the
    discriminator's cost against the same learner without it; the curves' plot."""
    lines = ["## Off-policy imitation", "",
             "Adversarial imitation on an off-policy learner (`[[wrappers]] kind = \"gail\"` on `algo = \"tqc\"` or "
             "`\"sac\"`; rewards computed when each replayed batch is sampled, absorbing states at terminations), "
             "beside SQIL and behaviour cloning on the same demonstrations. Score: 1 at the demonstrations' mean "
             "return, 0 at random actions'. *Steps to 0.9*: the first periodic evaluation (10 episodes, sampled "
             "actions) at 0.9 or more, per seed. *Final*: the final policy on 50 fresh episodes, with mean and with "
             "sampled actions (mean ± std over seeds). A run still in progress shows its steps so far "
             "and no final score.", "",
             "![off-policy imitation curves](results/offpolicy_imitation.png)", ""]
    for task, entry in d.get("tasks", {}).items():
        lines += [f"### {task.capitalize()}", ""]
        if "expert_return" in entry:
            lines += [f"Demonstrations' mean return {_fmt(entry['expert_return'], 1)}, random actions' "
                      f"{_fmt(entry['random_return'], 1)}.", ""]
        rows = []
        for method, m in entry.items():
            if not isinstance(m, dict) or "seeds" not in m:
                continue
            seeds = m["seeds"]
            done = [s for s in seeds if s.get("finished")]
            rows.append([TITLES.get(method, method), f"{m.get('algo', '?')}, {m.get('budget', 0) / 1e3:.0f}k",
                         ", ".join(str(s["seed"]) for s in seeds),
                         ", ".join(_steps(s.get("steps_to_0.9")) if s.get("curve") or s.get("finished") else "–"
                                   for s in seeds) if method != "bc" else "–",
                         _mean_std([s["score_mean"] for s in done if "score_mean" in s]),
                         _mean_std([s["score_sampled"] for s in done if "score_sampled" in s]),
                         ", ".join(f"{s['steps'] / 1e3:.0f}k" for s in seeds),
                         _mean_std([s["wall_time_s"] / 60 for s in done if s.get("wall_time_s")], 0),
                         _mean_std([s["cpu_time_s"] / 60 for s in done if s.get("cpu_time_s")], 0)])
        if rows:
            lines += table(["method", "learner, budget", "seeds", "steps to 0.9", "final, mean actions",
                            "final, sampled", "steps done", "minutes", "CPU minutes"], rows) + [""]
            commands = sorted({m["command"] for m in entry.values() if isinstance(m, dict) and m.get("command")})
            lines += [f"Command: `{c}`  " for c in commands[:-1]] + [f"Command: `{c}`" for c in commands[-1:]] + [""]
        for key in ("throughput", "throughput_torch"):
            tp = entry.get(key)
            if not tp:
                continue
            runs = tp["runs"]
            ratio = tp.get("ratio_to_learner", {}).get("with_discriminator")
            lines += [f"Cost, {tp.get('algo', '?')} on {tp.get('backend', 'jax')}: "
                      f"{_fmt(statistics.mean(runs['with_discriminator']), 0)} steps/s with the discriminator "
                      f"against {_fmt(statistics.mean(runs['learner']), 0)} for the same learner without it, "
                      f"{tp['steps']:,} steps each (learning from step 1,000), alternated ({tp['repeats']} repeats): "
                      f"ratio {_fmt(ratio)}.", ""]
    return lines + provenance({k: v for k, v in d.items() if k != "command"}) + [""]


def first_command_section(d: dict, provenance, table) -> list[str]:
    """The README's first command over seeds, with behaviour cloning on the same demonstrations."""
    bc = {s["seed"]: s for s in d.get("bc", {}).get("seeds", [])}
    rows = [[str(s["seed"]), _fmt(s["score"]), _fmt(s["sampled_score"]), _fmt(bc.get(s["seed"], {}).get("score")),
             f"{s['wall_time_s']:.0f}", _fmt(s.get("cpu_time_s"), 0)] for s in d["seeds"]]
    return ["## First command", "",
            f"`rlgen train {d['recipe']}` from {d['demo_episodes']} demonstration episode(s), scored by the run's "
            "own final evaluation (10 episodes each with mean and with sampled actions), beside behaviour cloning "
            f"({d['bc']['recipe']}) on the same episodes.", ""] + \
        table(["seed", "score, mean actions", "score, sampled", "behaviour cloning", "training seconds",
               "CPU seconds"], rows) + \
        [""] + ([d["note"], ""] if d.get("note") else []) + ([f"Seed 0 again on an otherwise idle machine: {d['alone']['wall_time_s']:.0f} s of training "
                 f"({_fmt(d['alone'].get('cpu_time_s'), 0)} CPU seconds), score {_fmt(d['alone']['score'])}.", ""]
                if "alone" in d else []) + provenance(d) + [""]
