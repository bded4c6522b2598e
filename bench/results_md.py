"""Write bench/RESULTS.md from the committed benchmark results in bench/results/*.json.

The README quotes one line per headline and links here; every per-seed figure, every superseded
task definition and the history of each measurement live in RESULTS.md, which is only ever
written by this script, so the two never disagree with the JSON::

    python bench/results_md.py            # rewrite bench/RESULTS.md
    python bench/results_md.py --check    # exit 1 if it is out of date

``tests/test_results_md.py`` runs the check, so a JSON file changed without rerunning this
script fails the test suite. Paths in the commands are relative to the repository root, so that each
command runs as written from a fresh clone; :func:`relative` rewrites any absolute path a JSON file
still holds, so that none reaches RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from results_offpolicy import first_command_section, offpolicy_section  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
OUT = Path(__file__).resolve().parent / "RESULTS.md"
ROOT = Path(__file__).resolve().parents[1]

#: An absolute path on the machine that ran a benchmark: a work, temporary or home folder, or a drive.
ABSOLUTE = re.compile(r"(?<![\w.~/:-])(?:/(?:work|tmp|root|home|Users)/|[A-Za-z]:\\)[^\s`'\"),;]*")
#: What goes of such a path outside the repository: the folder it lies in (a user's home included).
MACHINE_PREFIX = re.compile(r"^(?:/(?:home|Users)/[^/]+/|/(?:work|tmp|root)/|[A-Za-z]:\\(?:Users\\[^\\]+\\)?)")


# ------------------------------------------------------------------- formatting


def relative(text: str) -> str:
    """``text`` with every absolute path made relative: to the repository root when it lies inside it,
    else to the work, temporary or home folder it lies in (a file directly in it keeps its name alone)."""
    def fix(m: re.Match) -> str:
        path = m.group(0)
        try:
            return Path(path).relative_to(ROOT).as_posix() or "."
        except ValueError:
            return MACHINE_PREFIX.sub("", path) or "."
    return ABSOLUTE.sub(fix, text)


def num(x: float | None, digits: int = 0) -> str:
    """``3,450`` / ``0.99``; a dash for a figure that was not measured."""
    if x is None:
        return "–"
    return f"{x:,.{digits}f}"


def mean_std(values: list[float]) -> str:
    """``mean ± std`` over seeds; the std is the sample one (divided by n - 1) everywhere in RESULTS."""
    if len(values) < 2:
        return num(values[0]) if values else "–"
    return f"{num(statistics.mean(values))} ± {num(statistics.stdev(values))}"


def steps(n: int | None) -> str:
    """``150k``, ``1M``, ``never``."""
    if n is None:
        return "never"
    return f"{n / 1e6:.2g}M" if n >= 1_000_000 else f"{round(n / 1e3)}k"


def table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(row) + " |" for row in rows]


def machine_kind(m: dict | None) -> str:
    """``2-core CPU, no GPU``, or the GPU's name."""
    m = m or {}
    return m.get("gpu") or f"{m.get('cores', '?')}-core CPU, no GPU"


def machine(m: dict | None) -> str:
    if not m:
        return ""
    where = m.get("gpu") or f"{m.get('cores', '?')}-core {m.get('cpu', '?')}, no GPU"
    return f"{where}, Python {m.get('python', '?')}, torch {m.get('torch', '?')}, {m.get('torch_threads', '?')} torch thread(s)"


def provenance(d: dict, where: str = "") -> list[str]:
    """``Command: ...`` and ``Measured on: <machine>; <date>``; ``where`` describes the machine instead of ``machine``."""
    out = []
    if d.get("command"):
        out.append(f"Command: `{d['command']}`")
    where = where or machine(d.get("machine"))
    if where or d.get("date"):
        out.append("Measured on: " + "; ".join(x for x in (where, d.get("date", "")) if x))
    return [line + "  " for line in out[:-1]] + out[-1:] if out else []


# ------------------------------------------------------------------- imitation


def _seeds(runs: dict, n: int) -> list[tuple[int, dict]]:
    """The runs of one demonstration count, by seed: keys ``n<trajectories>-s<seed>``."""
    out = []
    for key, run in runs.items():
        count, seed = key[1:].split("-s")
        if int(count) == n:
            out.append((int(seed), run))
    return sorted(out, key=lambda kv: kv[0])


def imitation_section(d: dict) -> list[str]:
    lines = ["## Imitation", "",
             "GAIL and behaviour cloning, from `bench/results/gail.json` (`python bench/gail.py`). Each GAIL run starts from a behaviour clone of its demonstrations (`bc_init`), as the recipes "
             "do; *imitation* is the HumanCompatibleAI [imitation](https://github.com/HumanCompatibleAI/imitation) "
             "library's GAIL from the same demonstrations, start and budget (`bench/imitation_gail.py`, on the "
             "v4 version of the env, which imitation's pinned gymnasium provides). Returns are means ± std over "
             "each policy's final evaluation episodes, with its mean action and, where measured, with sampled "
             "actions; the fraction is of the demonstrations' mean return. imitation runs from its own virtual "
             "environment, `.venv-imitation/` at the repository root (`--imitation-python`, default "
             "`.venv-imitation/bin/python`; `bench/imitation_gail.py` says what it holds). A command with "
             "`--imitation-python ''` reads back imitation's runs already in its runs directory, each made by "
             "`.venv-imitation/bin/python bench/imitation_gail.py` with the arguments bench/gail.py gives it.", ""]
    where = f"{machine_kind(d.get('machine'))}, {d.get('machine', {}).get('torch_threads', '?')} torch thread per run"
    for task, t in d["tasks"].items():
        expert = t["expert_return"]
        lines += [f"### {t.get('title', t['env_id'])}", "",
                  f"Demonstrations `{t['demos']}`: mean return {num(expert)} ± {num(t.get('expert_return_std'))}; "
                  f"GAIL budget {num(t['budget'])} env steps.", ""]
        counts = sorted({int(k[1:].split("-s")[0]) for k in t.get("gail", {})}, reverse=True)
        def score(r: dict | None, key: str = "") -> str:
            if r is None:
                return "not run"
            if f"{key}return" not in r:
                return "–"
            return f"{num(r[key + 'return'])} ± {num(r[key + 'std'])} ({r[key + 'return'] / expert:.2f})"

        sampled = any("sampled_return" in g for g in t.get("gail", {}).values())
        fresh = max((g["fresh"]["episodes"] for g in t.get("gail", {}).values() if "fresh" in g), default=0)

        def fresh_score(r: dict | None) -> str:
            f = (r or {}).get("fresh")
            return f"{f['fraction_of_expert']:.2f} / {f['sampled_fraction_of_expert']:.2f}" if f else "–"

        rows = []
        for n in counts:
            for seed, g in _seeds(t["gail"], n):
                bc = t.get("bc", {}).get(f"n{n}-s{seed}")
                im = t.get("imitation", {}).get(f"n{n}-s{seed}")
                row = [str(n), str(seed), num(bc["return"]) if bc else "–", score(g)]
                row += [score(g, "sampled_")] if sampled else []
                row += [fresh_score(bc), fresh_score(g)] if fresh else []
                row += [score(im)] + ([score(im, "sampled_") if im else "not run"] if sampled else [])
                rows.append(row + [num(g.get("steps_per_s"))])
        head = ["trajectories", "seed", "BC", "GAIL (rlgen)"] + (["sampled (rlgen)"] if sampled else [])
        head += [f"BC, {fresh} fresh episodes: mean / sampled", f"GAIL (rlgen), {fresh} fresh episodes: mean / sampled"] if fresh else []
        head += ["GAIL (imitation)"] + (["sampled (imitation)"] if sampled else []) + ["rlgen steps/s"]
        lines += table(head, rows)
        lines.append("")
        for n in counts:
            ours = [g["return"] for _, g in _seeds(t["gail"], n)]
            theirs = [r["return"] for _, r in _seeds(t.get("imitation", {}), n)]
            sampled_ours = [g["sampled_return"] for _, g in _seeds(t["gail"], n) if "sampled_return" in g]
            if len(ours) > 1:
                line = f"- {n} trajectories, {len(ours)} seeds: rlgen {mean_std(ours)} ({statistics.mean(ours) / expert:.2f})"
                if len(sampled_ours) == len(ours):
                    line += (f", with sampled actions {mean_std(sampled_ours)} "
                             f"({statistics.mean(sampled_ours) / expert:.2f})")
                fr = [g["fresh"] for _, g in _seeds(t["gail"], n) if "fresh" in g]
                if len(fr) == len(ours):
                    line += (f"; on {fr[0]['episodes']} fresh episodes each, "
                             f"{statistics.mean(f['fraction_of_expert'] for f in fr):.2f} with the mean action and "
                             f"{statistics.mean(f['sampled_fraction_of_expert'] for f in fr):.2f} sampled")
                if theirs:
                    line += (f", imitation {mean_std(theirs)} ({statistics.mean(theirs) / expert:.2f}) over {len(theirs)} "
                             f"seed{'s' if len(theirs) > 1 else ''}")
                lines.append(line)
        tp = t.get("throughput")
        if tp:
            ratio = tp["ratio_to_trpo"]["trpo+gail"]
            lines.append(f"- Throughput: TRPO+GAIL runs at {ratio:.2f} of plain TRPO's env steps/s "
                         f"({num(statistics.mean(tp['runs']['trpo+gail']))} against "
                         f"{num(statistics.mean(tp['runs']['trpo']))}, {num(tp['steps'])} steps each; "
                         f"`{tp['command']}`)")
        if t.get("status"):
            lines.append(f"- Status: {t['status']}")
        lines += ["", *provenance(t, where), ""]
    if d.get("note"):
        lines += ["### Measurement conditions", "", d["note"], ""]
    return lines


def sampled_actions_section(d: dict) -> list[str]:
    lines = ["## GAIL with sampled actions", "",
             "What keeps a GAIL policy good when it samples its actions, from `bench/results/gail_sampled.json` "
             "(`python bench/gail_sampled.py`; curves in `gail_sampled.png`): the task's GAIL recipe with "
             "some discriminator (or policy) settings changed (`base` changes none), one seed, the same "
             "behaviour-clone start and budget. Returns are the final evaluation's (10 episodes), as a fraction "
             "of the demonstrations' mean; the discriminator's accuracy on policy samples is the mean of its "
             "last five logged points, the policy's std its last (`train/std`). *Noise scaled* is the final policy "
             "evaluated again with sampled actions whose std is multiplied by 0.75, 0.5 and 0.25 (`--noise-scales`; "
             "at 1 it repeats the sampled evaluation exactly), as fractions of the demonstrations' mean. A "
             "10-episode evaluation moves by a tenth of the demonstrations' return with each fall, so *second half* "
             "averages every evaluation from half the budget on, with mean and with sampled actions.", ""]
    for t in d["tasks"].values():
        rows = []
        for name, v in sorted(t["variants"].items()):
            acc = v.get("acc_policy") or [[0, float("nan")]]
            std = v.get("policy_std") or [[0, float("nan")]]
            scaled = " / ".join(f"{m / t['expert_return']:.2f}" for sc, m, _ in v.get("noise_scales", []) if sc != 1)
            budget = v.get("budget", t["budget"])
            late = [(m, s) for (step, m, _), (_, s, _) in zip(v["curve"], v.get("sampled_curve", v["curve"]))
                    if step >= budget / 2]
            rows.append([f"`{name}`" + (f" ({num(budget)} steps)" if budget != t["budget"] else ""), f"{num(v['return'])} ± {num(v['std'])} ({v['fraction']:.2f})",
                         f"{num(v['sampled_return'])} ± {num(v['sampled_std'])} ({v['sampled_fraction']:.2f})"
                         if "sampled_return" in v else "–",
                         f"{statistics.mean(m for m, _ in late) / t['expert_return']:.2f} / "
                         f"{statistics.mean(s for _, s in late) / t['expert_return']:.2f}" if late else "–", scaled or "–",
                         f"{statistics.mean(a for _, a in acc[-5:]):.2f}", f"{std[-1][1]:.3f}"])
        lines += [f"### {t['env_id']}", "",
                  f"Demonstrations' mean return {num(t['expert_return'])}; seed {t['seed']}, {num(t['budget'])} env steps.", ""]
        lines += table(["variant", "mean actions", "sampled actions", "second half: mean / sampled",
                        "noise scaled ×0.75 / ×0.5 / ×0.25",
                        "D accuracy on policy", "policy std"], rows)
        if t.get("finding"):
            lines += ["", t["finding"]]
        own = [f"`{name}`, at its own budget: `{v['command']}`" for name, v in sorted(t["variants"].items())
               if "command" in v]
        prov = [line.rstrip() for line in provenance(t)] + own
        lines += ["", *[line + "  " for line in prov[:-1]], *prov[-1:], ""]
    return lines


# ------------------------------------------------------------------- exploration


def vime_section(d: dict) -> list[str]:
    lines = ["## Exploration", "",
             "TRPO with and without VIME on the sparse-reward tasks, from `bench/results/vime_sparse.json` "
             "(`python bench/vime_sparse.py`). A run *solves* a task when its final policy earns reward: a positive mean return over its final "
             "deterministic episodes (50, on an environment seeded apart from training). It solves it "
             "*reliably* when at least half of those episodes earn reward. The periodic evaluations (10 "
             "episodes every 50k steps) draw the curves (`vime_sparse.png`) and give the first step at which "
             "an evaluation earned reward; ten episodes cannot tell a policy that reaches the goal one time in "
             "ten from one that never does, so they decide nothing. The `-v1` tasks are VIME's own definitions (`envs/README.md`); "
             "before any training, no episode in 50 of a random policy or of TRPO's untrained one earned reward "
             "on four of them, while on SparseDoublePendulum-v1 48 of 50 random episodes and all 50 of TRPO's "
             "did, as the original defines it (`bench/results/sparse_check.json`). Sections whose env is marked "
             "superseded hold the runs on rlgen's first definitions (`-v0`), kept for the record.", ""]
    tasks = d["tasks"]
    current = [k for k, t in tasks.items() if "superseded" not in t["env_id"]]
    superseded = [k for k in tasks if k not in current]
    for key in current + superseded:
        t = tasks[key]
        lines += [f"### {key}", "", f"Env: {t['env_id']}.", ""]
        if t.get("note"):
            lines += [t["note"], ""]
        rows = []
        for method in ("vime", "trpo"):
            for seed, r in sorted(t["runs"].get(method, {}).items(), key=lambda kv: int(kv[0])):
                episodes = r.get("final_episodes")
                with_reward = (f"{round(r['final_success_rate'] * episodes)} of {episodes}" if episodes
                               else f"{r['final_success_rate']:.0%} of 10 (last evaluation)")
                rows.append(["TRPO+VIME" if method == "vime" else "TRPO", seed, steps(r.get("first_solved_step")),
                             num(r["final_return"], 2), with_reward, "yes" if r["solved"] else "no",
                             steps(r["env_steps"]), num(r.get("steps_per_s"))])
        lines += table(["method", "seed", "first evaluation with reward", "final return",
                        "final episodes with reward", "solved", "steps", "steps/s"], rows)
        solved, reliably = t["solved_seeds"], t["reliably_solved_seeds"]
        n = len(t["runs"].get("vime", {}))
        lines += ["", f"Solved: TRPO+VIME {solved['vime']} of {n} seeds ({reliably['vime']} reliably), "
                      f"TRPO {solved['trpo']} of {len(t['runs'].get('trpo', {}))} ({reliably['trpo']} reliably).  ",
                  f"Command: `{t['command']}`", ""]
    tp = d.get("throughput")
    if tp:
        lines += ["### Throughput", "",
                  f"TRPO+VIME runs at {tp['ratio_to_trpo']['trpo+vime']:.2f} of plain TRPO's env steps/s on "
                  f"{tp['env_id']} ({num(statistics.mean(tp['runs']['trpo+vime']))} against "
                  f"{num(statistics.mean(tp['runs']['trpo']))}, {num(tp['steps'])} steps each, dynamics-model "
                  "training included).", "", *provenance(tp), ""]
    lines += ["### Last written", "", *provenance(d), ""]
    return lines


# ------------------------------------------------------------------- image models


#: The papers' figures on full MNIST (60,000 training images), for scale; not measured here.
PAPERS = {"improved_gan": "test accuracy 0.9907 (Salimans et al. 2016, 100 labels)",
          "infogan": "code accuracy 0.95 (Chen et al. 2016)",
          "vae_iaf": "NLL 79.1 (Kingma et al. 2016)", "vae_diagonal": "ELBO -84.1 (Kingma et al. 2016)",
          "pixelcnn": "NLL 81.3 (van den Oord et al. 2016)",
          "pixelrnn": "Diagonal BiLSTM NLL 79.2 (van den Oord et al. 2016)"}

IMAGE_FIGURES = {"accuracy": ("test accuracy", 3), "cat_accuracy": ("code accuracy (Hungarian)", 3),
                 "cat_shared_codes": ("codes shared by two digits", 1),
                 "cat_worst_digit_accuracy": ("worst digit in its code", 2),
                 "nll": ("test NLL (nats)", 1), "elbo": ("ELBO (nats)", 1), "bits_per_dim": ("bits/dim", 3),
                 "domain_fid": ("domain FID", 1), "classifier_score": ("classifier score", 2)}


def images_section(d: dict) -> list[str]:
    lines = ["## Image models", "",
             "On mnist5k, from `bench/results/images.json` (`python bench/images.py`). "
             f"{seeds_text(d)}; 4,000 training and 1,000 test images; budgets in epochs of the "
             f"training images; likelihood models on {d.get('binarize_likelihood_models', 'dynamically')} "
             f"binarised images; FID and classifier score from {num(d.get('fid_samples'))} samples and a "
             "classifier trained on the same data (`rlgen gen eval`).", ""]
    lines += images_table(d)
    for key, label in (("throughput", "CPU"), ("throughput_gpu", "GPU")):
        tp = d.get(key)
        if tp:
            lines.append("")
            lines.append(f"DCGAN training speed against a plain single-file PyTorch DCGAN of the same layers "
                         f"({label}, {tp['torch_threads']} torch thread(s)): {tp['ratio_rlgen_to_plain']:.2f}x.")
    lines += reference_lines(d)
    lines += probe_lines(d)
    lines += ["", *command_lines(d), ""]
    for name, other in d.get("other_datasets", {}).items():
        lines += [f"### {name}", "",
                  f"Recorded apart from mnist5k: {num(other.get('train_images'))} training images from "
                  f"`{other.get('data_dir') or name}` (`--data.data_dir`); {seeds_text(other).lower()}.", ""]
        if other.get("note"):
            lines += [other["note"], ""]
        lines += [*images_table(other), "", *command_lines(other), ""]
    return lines


def command_lines(d: dict) -> list[str]:
    """The command behind each model's figures (a section gathers several invocations, at several
    budgets and on several machines), then the machine and date of the last one."""
    commands: dict[str, list[str]] = {}
    for model, m in d["models"].items():
        commands.setdefault(m.get("command") or d.get("command", ""), []).append(model)
    last = provenance({k: d[k] for k in ("machine", "date") if k in d})
    if last:
        last[-1] = last[-1].replace("Measured on:", "Last measured on:", 1)
    head = ["Each model's last invocation; the seeds run by earlier ones at the same budget are kept beside its own:", ""]
    return [*head, *(f"Command ({', '.join(models)}): `{command}`  " for command, models in commands.items()), *last]


def reference_lines(d: dict) -> list[str]:
    """The plain re-implementations measured beside rlgen's models (``references`` in images.json)."""
    lines = []
    for name, ref in d.get("references", {}).items():
        runs = ref["runs"]
        each = "; ".join(f"seed {seed}: {r['accuracy']:.3f} ({r['accuracy_current']:.3f} with its current weights) "
                         f"after {r['epochs']} epochs, {num(r['wall_time_s'])} s" for seed, r in sorted(runs.items(), key=lambda kv: int(kv[0])))
        lines += ["", f"{ref['title']} (`{name}`, `{ref['command']}`): {each}. {ref.get('note', '')}".rstrip()]
    return lines


def probe_lines(d: dict) -> list[str]:
    """Settings tried and not kept (``probes`` in images.json), one line each."""
    probes = d.get("probes")
    if not probes:
        return []
    lines = ["", "#### Tried and not kept", "", probes["note"], ""]
    for r in probes["runs"]:
        when = "at the end" if r["steps"] == r["of_steps"] else f"after {num(r['steps'])} of {num(r['of_steps'])} steps"
        note = f"; {r['note']}" if r.get("note") else ""
        lines.append(f"- `{r['model']}` with `{r['change']}`, seed {r['seed']}: {r['metric']} {r['value']:.3f} {when}, "
                     f"against {r['without']:.3f} without{note}.")
    return lines


def seeds_text(d: dict) -> str:
    """"One seed (0)", or how many seeds the figures are the mean of."""
    counts = {len(m.get("runs", {})) or 1 for m in d["models"].values()}
    if counts == {1}:
        return f"One seed ({d.get('seed', 0)})"
    return f"Up to {max(counts)} seeds per model; figures are mean ± standard deviation over the seeds"


def images_table(d: dict) -> list[str]:
    rows, earlier = [], []
    for name, m in d["models"].items():
        figures = figures_text(m)
        for e in m.get("earlier_budgets", []):
            earlier.append(f"{name} at {e['budget']['epochs']:g} epochs ({seeds_word(e)}, `{e.get('command', '')}`): "
                           f"{figures_text(e)}.")
        where = m.get("measured_on") or d.get("machine") or {}
        label = f"{m['title']} (`{name}`)" if m.get("title") else name
        rows.append([label, f"{m['budget']['epochs']:g}", figures, where.get("gpu") or f"{where.get('cores', '?')}-core CPU",
                     num(m.get("train_wall_time_s")), PAPERS.get(name, "")])
    lines = table(["model", "epochs", "figures", "trained on", "training (s)", "paper, full MNIST (for scale)"], rows)
    confusions = [f"[{m.get('title', name)}]({Path(m['confusion_png']).relative_to('bench')}) (seed {seed})"
                  for name, m in d["models"].items() if m.get("confusion_png")
                  for seed, r in m.get("runs", {}).items() if r.get("confusion_png") == m["confusion_png"]]
    if confusions:
        lines += ["", "Each digit's test images by the class or code the model gives them (InfoGAN's codes in the "
                  "columns of the digits they are matched to): " + ", ".join(confusions) + "."]
    return lines + (["", "Measured earlier at other budgets:", "", *(f"- {e}" for e in earlier)] if earlier else [])


def figures_text(m: dict) -> str:
    """A model's figures, ``label mean ± std`` each, from its ``metrics`` (and ``metrics_std``)."""
    std, runs = m.get("metrics_std", {}), m.get("runs", {})
    out = []
    for k, (label, digits) in IMAGE_FIGURES.items():
        if k in m["metrics"]:
            out.append(f"{label} {num(m['metrics'][k], digits)}" + (f" ± {num(std[k], digits)}" if k in std else ""))
        elif any(k in r["metrics"] for r in runs.values()):  # measured after some seeds ran: those that have it
            have = sorted((int(seed), r["metrics"][k]) for seed, r in runs.items() if k in r["metrics"])
            out.append(f"{label} {', '.join(num(v, digits) for _, v in have)} "
                       f"(seed{'s' if len(have) > 1 else ''} {', '.join(str(seed) for seed, _ in have)})")
    return "; ".join(out)


def seeds_word(m: dict) -> str:
    seeds = m.get("seeds", [])
    return f"seed {seeds[0]}" if len(seeds) == 1 else f"seeds {', '.join(map(str, seeds))}"


def iaf_curve_section(d: dict) -> list[str]:
    seeds = sorted(d["runs"], key=int)
    lines = ["### IAF against the diagonal VAE over training", "",
             "From `bench/results/iaf_curve.json` (`python bench/iaf_curve.py`, plot `iaf_curve.png`): the "
             f"default VAE recipe with each posterior, seeds {', '.join(seeds)}, {d['epochs']} epochs of "
             f"{d['dataset']}, test NLL ({d['iw_samples']} importance samples) and ELBO every "
             f"{d['eval_every']} epochs, in nats on dynamically binarised images. Positive: IAF is better.", ""]
    elbo = {p["epoch"]: p for p in d["gap"]["elbo"]}
    rows = []
    for p in d["gap"]["nll"]:
        e = elbo.get(p["epoch"])
        nll = {post: statistics.mean(dict(map(tuple, r[post]["curves"]["nll"]))[p["epoch"]] for r in d["runs"].values())
               for post in ("iaf", "diagonal")}
        rows.append([f"{p['epoch']:g}", num(nll["iaf"], 1), num(nll["diagonal"], 1),
                     f"{p['mean']:+.2f} ± {p['std']:.2f}", f"{e['mean']:+.2f} ± {e['std']:.2f}" if e else "–"])
    lines += table(["epoch", "IAF NLL", "diagonal NLL", "NLL gap", "ELBO gap"], rows)
    times = {post: statistics.mean(r[post]["train_wall_time_s"] for r in d["runs"].values()) for post in ("iaf", "diagonal")}
    lines += ["", f"Training time per run: IAF {num(times['iaf'])} s, diagonal {num(times['diagonal'])} s "
              f"({times['iaf'] / times['diagonal']:.2f}x), evaluations included.", "", *provenance(d), ""]
    return lines


# ------------------------------------------------------------------- scaling


def scaling_section(d: dict) -> list[str]:
    lines = ["## Scaling out", "",
             "Env steps/s on Ant-v5 with 1, 2 and 4 envs, from `bench/results/scaling.json` "
             f"(`python bench/scaling.py`): whole training ({num(d['steps'])} steps, updates included), relative to one env in one process "
             "(measured first and last; the mean is the baseline).", ""]
    configs = [k for k in next(iter(d["algos"].values()))["speedup"]]
    rows = []
    for algo, a in d["algos"].items():
        base = statistics.mean(a["steps_per_s"]["1-dummy"])
        rows.append([f"{algo} (1 env: {num(base)} steps/s)", *(f"{a['speedup'][c]:.2f}" for c in configs)])
    lines += table(["", *(c.replace("-", " ") for c in configs)], rows)
    lines += ["", *provenance(d), ""]
    return lines


# ------------------------------------------------------------------- experts


def expert_learners_section(d: dict) -> list[str]:
    lines = ["## Expert learners", "",
             "Whole training (env steps and one gradient step each; DroQ 20) on one thread, from "
             "`bench/results/expert_learners.json`: env steps per CPU-second of the process (all its threads), its "
             "ratio to SB3's SAC (measured first and last), and env steps per wall-clock second, on a 2-core "
             "machine kept otherwise idle (`--pause-pids` stops other processes while it measures). jax overlaps its updates with the env "
             "(about 1.4 cores), so its wall-clock rate is the higher one; with one run per core, as the "
             "experts train, the CPU-second rate is what each gets. For SAC and TQC the same algorithm takes "
             "the same steps on either library, so the ratio is also that of time to any return; across "
             "algorithms, steps to a return differ and are not measured here. The experts train with TQC on "
             "jax (`agents/humanoid-tqc.toml`, `agents/ant-tqc.toml`).", ""]
    header = ["learner"]
    cells: dict[str, list[str]] = {n: [] for n in d["learners"]}
    for env_id, e in d["envs"].items():
        header += [f"{env_id} steps/CPU-s (ratio)", f"{env_id} steps/s wall"]
        wall: dict[str, list[float]] = {}
        for run in e["runs"]:
            if "steps" in run:
                wall.setdefault(run["learner"], []).append(run["steps"] / run["wall_seconds"])
        for n in d["learners"]:
            rate = e["steps_per_s"].get(n)
            cells[n] += ([f"{num(rate, 1)} ({e['ratio'][n]:.2f})", num(statistics.mean(wall[n]), 1)]
                         if rate is not None else ["failed", "–"])
    lines += table(header, [[n, *c] for n, c in cells.items()])
    lines += ["", *provenance(d), ""]
    return lines


def experts_section(d: dict) -> list[str]:
    lines = ["## Expert runs", "",
             "The experts' training (`rlgen train agents/humanoid-tqc.toml`, `agents/ant-tqc.toml`), from "
             "`bench/results/experts.json`: evaluation return (10 episodes, mean actions) at the latest and "
             "best evaluation, and the env steps and training hours at which each target was first reached. "
             "The runs were stopped and resumed; a gap of more than `--max-gap-min` minutes between two "
             "evaluations counts as the median gap in the training hours.", ""]
    rows = []
    for r in d["runs"]:
        reached = ", ".join(f"{t}: " + (f"{steps(h['step'])} ({h['hours']:.1f} h)" if h else "not yet")
                            for t, h in r["reached"].items())
        latest, best = r["latest"] or {}, r["best"] or {}
        rows.append([r["env_id"], f"{r['algo'].upper()} ({r['backend']})",
                     f"{num(latest.get('mean_return'))} at {steps(latest.get('step'))} ({latest.get('hours', 0):.1f} h)",
                     f"{num(best.get('mean_return'))} at {steps(best.get('step'))}", reached])
    lines += table(["env", "learner", "latest", "best", "targets"], rows)
    lines += ["", *provenance(d), ""]
    return lines


# ------------------------------------------------------------------- document


def render() -> str:
    """RESULTS.md's text, from the JSON files present in bench/results/."""
    load = {name: json.loads((RESULTS / f"{name}.json").read_text())
            for name in ("first_command", "experts", "expert_learners", "gail", "offpolicy_imitation", "gail_sampled",
                         "vime_sparse", "images", "iaf_curve", "scaling") if (RESULTS / f"{name}.json").is_file()}
    lines = ["# Benchmark results", "",
             "<!-- Written by bench/results_md.py from bench/results/*.json; edit those or the script, "
             "not this file. -->", "",
             "Every figure below is read from the JSON files in `bench/results/`, which the scripts in "
             "`bench/` write; the README quotes the headlines.", ""]
    sections = {"first_command": lambda d: first_command_section(d, provenance, table),
                "experts": experts_section, "expert_learners": expert_learners_section, "gail": imitation_section,
                "offpolicy_imitation": lambda d: offpolicy_section(d, provenance, table),
                "gail_sampled": sampled_actions_section, "vime_sparse": vime_section, "images": images_section,
                "iaf_curve": iaf_curve_section, "scaling": scaling_section}
    for name, section in sections.items():
        if name in load:
            lines += section(load[name])
    return relative("\n".join(lines).rstrip() + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if RESULTS.md differs from what the JSON gives")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        if not OUT.is_file() or OUT.read_text() != text:
            print(f"{OUT} is out of date; run: python bench/results_md.py", file=sys.stderr)
            return 1
        return 0
    OUT.write_text(text)
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
