"""What made a run: the code, the command and the libraries, kept in its ``summary.json``.

A figure that does not reproduce is explained by what changed since: rlgen itself (its version and
git commit, with ``dirty`` when the checkout had changes), the command line, Python, the libraries
that compute the numbers (torch, stable-baselines3, sb3-contrib, sbx, jax, gymnasium, MuJoCo,
NumPy) and the device. :func:`provenance` records them; :func:`differences` names those that
differ between a run and now, which ``rlgen eval`` prints when its figure differs from the run's.
Versions are read from the installed packages' metadata, without importing them.
"""

from __future__ import annotations

import platform
import shlex
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

#: Distributions whose versions a run records, by the name it records them under.
PACKAGES = {"rlgen": "rlgen", "torch": "torch", "stable-baselines3": "stable-baselines3", "sb3-contrib": "sb3-contrib",
            "sbx": "sbx-rl", "jax": "jax", "gymnasium": "gymnasium", "mujoco": "mujoco", "numpy": "numpy"}


def _version(distribution: str) -> str | None:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


def git_commit() -> str | None:
    """The commit of the checkout rlgen runs from, ``-dirty`` when it has changes; None outside one."""
    here = Path(__file__).resolve().parent
    try:
        head = subprocess.run(["git", "-C", str(here), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10)
        if head.returncode != 0:
            return None
        status = subprocess.run(["git", "-C", str(here), "status", "--porcelain", "--untracked-files=no"],
                                capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return head.stdout.strip() + ("-dirty" if status.stdout.strip() else "")


def provenance(device: str) -> dict[str, Any]:
    """What this process runs: rlgen's version and commit, the command, Python and the libraries' versions, the device."""
    return {"versions": {name: _version(dist) for name, dist in PACKAGES.items()} | {"python": platform.python_version()},
            "commit": git_commit(), "command": shlex.join(["rlgen" if Path(sys.argv[0]).name == "rlgen" else sys.argv[0],
                                                           *sys.argv[1:]]),
            "device": device}


def _short(commit: str) -> str:
    return commit[:12] + ("-dirty" if commit.endswith("-dirty") else "")


def differences(recorded: dict[str, Any], device: str) -> list[str]:
    """What differs between a run's :func:`provenance` and this process: ``"torch 2.5.1 then, 2.6.0 now"``..."""
    now = provenance(device)
    out = [f"{name} {then} then, {now['versions'].get(name)} now"
           for name, then in recorded.get("versions", {}).items() if now["versions"].get(name) != then]
    if recorded.get("commit") and now["commit"] and recorded["commit"] != now["commit"]:
        out.append(f"rlgen commit {_short(recorded['commit'])} then, {_short(now['commit'])} now")
    if recorded.get("device") and recorded["device"] != device:
        out.append(f"device {recorded['device']} then, {device} now")
    return out
