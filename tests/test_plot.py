"""rlgen plot: a title on every figure, the demonstrations' return drawn for imitation runs."""

from __future__ import annotations

import json

import matplotlib.pyplot as plt

from rlgen.plot import plot_runs


def _run(path, *, expert=None):
    path.mkdir()
    (path / "config.toml").write_text("")
    (path / "eval.jsonl").write_text("".join(json.dumps({"step": s, "mean_return": r, "std_return": 1.0}) + "\n"
                                             for s, r in ((100, -900.0), (200, -300.0))))
    if expert is not None:
        (path / "summary.json").write_text(json.dumps({"expert_return": expert}))
    return path


def test_imitation_runs_draw_the_expert_return_and_figures_have_titles(tmp_path, monkeypatch):
    figures = []
    monkeypatch.setattr(plt, "close", lambda fig=None: figures.append(fig))
    gail, ppo = _run(tmp_path / "gail", expert=-208.9), _run(tmp_path / "ppo")
    plot_runs([gail, ppo], tmp_path / "c.png")
    fig = figures[-1]
    assert fig._suptitle is not None and fig._suptitle.get_text() == "gail, ppo"
    eval_axes = fig.axes[0]
    expert_lines = [line for line in eval_axes.lines if line.get_label().startswith("expert")]
    assert len(expert_lines) == 1 and expert_lines[0].get_ydata()[0] == -208.9
    assert expert_lines[0].get_label() == "expert (gail)"

    plot_runs([ppo], tmp_path / "d.png", title="mine")
    assert figures[-1]._suptitle.get_text() == "mine"
    assert not [line for line in figures[-1].axes[0].lines if line.get_label().startswith("expert")]
