"""Learning curves of one or more runs on one PNG: ``rlgen plot RUN_DIR [RUN_DIR ...]``.

Panels: evaluation return (``eval.jsonl``, mean ± std), training episode return
(``rollout/ep_rew_mean``, the environment's own reward), every learned-reward term
(``reward/<name>``) and imitation figure (``gail/...``) found in the TensorBoard logs, and any
other scalars asked for by name or pattern (``episode/x_position_max``: a sparse task's progress).
"""

from __future__ import annotations

from collections.abc import Sequence
from fnmatch import fnmatchcase
from pathlib import Path

import numpy as np

from rlgen.errors import RlgenError


def read_scalars(run_dir: Path) -> dict[str, np.ndarray]:
    """Every TensorBoard scalar of a run as ``tag -> (N, 2)`` arrays of (step, value)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    tb = run_dir / "tb"
    if not tb.is_dir():
        return {}
    acc = EventAccumulator(str(tb), size_guidance={"scalars": 0})
    acc.Reload()
    out = {}
    for tag in acc.Tags().get("scalars", []):
        events = acc.Scalars(tag)
        by_step = {e.step: e.value for e in events}  # a resumed run may log a step twice
        steps = np.array(sorted(by_step))
        out[tag] = np.stack([steps, [by_step[s] for s in steps]], axis=1)
    return out


def plot_runs(run_dirs: list[Path], out: Path, *, title: str | None = None, tags: Sequence[str] = ()) -> Path:
    """Draw the runs' curves side by side and write ``out`` (PNG).

    :param tags: further TensorBoard scalar tags (or shell patterns) to draw, one panel each.
    :param title: the figure's title (default: the runs' names).
    :raises RlgenError: if a tag matches no scalar of any run, or the runs logged nothing yet.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter, MaxNLocator

    from rlgen.rl.callbacks import read_eval_log

    from rlgen.runs import load_summary

    runs = []
    for run_dir in run_dirs:
        run_dir = Path(run_dir)
        if not (run_dir / "config.toml").is_file():
            raise RlgenError(f"{run_dir} is not a run directory (no config.toml); pass directories made by 'rlgen train'")
        runs.append((run_dir, read_eval_log(run_dir / "eval.jsonl"), read_scalars(run_dir)))
    logged = {t for _, _, s in runs for t in s}
    if not logged and not any(evals for _, evals, _ in runs):
        raise RlgenError(f"nothing to plot: {', '.join(str(r) for r, _, _ in runs)} logged no evaluation and no "
                         "scalar yet; plot again after the first rollout")
    # Imitation runs know their demonstrations' return: the line their curves should reach.
    experts = {r.name: load_summary(r)["expert_return"] for r, _, _ in runs if "expert_return" in load_summary(r)}
    extra = sorted(t for t in logged if t.startswith(("reward/", "gail/acc", "vime/")))
    for pattern in tags:
        matched = sorted(t for t in logged if fnmatchcase(t, pattern))
        if not matched:
            raise RlgenError(f"no run logged a scalar matching {pattern!r}; the runs log e.g. {', '.join(sorted(logged)[:5])}")
        extra += [t for t in matched if t not in extra]
    panels = ["eval return", "training episode return (env reward)"] + extra
    cols = min(3, len(panels))
    rows = -(-len(panels) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(5.2 * cols, 3.6 * rows), squeeze=False)
    for ax, panel in zip(axes.flat, panels):
        for run_dir, evals, scalars in runs:
            label = run_dir.name
            if panel == "eval return":
                if evals:
                    steps = np.array([e["step"] for e in evals])
                    mean = np.array([e["mean_return"] for e in evals])
                    std = np.array([e["std_return"] for e in evals])
                    ax.plot(steps, mean, marker="o", ms=3, label=label)
                    ax.fill_between(steps, mean - std, mean + std, alpha=0.15)
            else:
                tag = "rollout/ep_rew_mean" if panel.startswith("training") else panel
                if tag in scalars:
                    ax.plot(scalars[tag][:, 0], scalars[tag][:, 1], label=label)
        if panel == "eval return" or panel.startswith("training"):
            for value in sorted(set(experts.values())):
                names = ", ".join(name for name, v in experts.items() if v == value)
                ax.axhline(value, color="k", ls="--", lw=1, label=f"expert ({names})")
        ax.set_title(panel, fontsize=10)
        ax.set_xlabel("environment steps")
        ax.xaxis.set_major_locator(MaxNLocator(5))
        ax.xaxis.set_major_formatter(FuncFormatter(_steps))
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=8)
    fig.suptitle(title or ", ".join(r.name for r, _, _ in runs))
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def _steps(x: float, _pos: int) -> str:
    """Axis labels like 50k and 1.5M, so long runs stay legible."""
    if abs(x) >= 1e6:
        return f"{x / 1e6:g}M"
    if abs(x) >= 1e3:
        return f"{x / 1e3:g}k"
    return f"{x:g}"
