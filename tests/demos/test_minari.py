"""Round trips between rlgen demonstrations and Minari datasets, and their one-line errors."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

from rlgen.demos.format import Demonstrations, DemoError
from rlgen.demos.minari_io import from_minari, to_minari

minari = pytest.importorskip("minari")
pytest.importorskip("h5py")

ENV_KWARGS = {"g": 9.0, "max_episode_steps": 50}
LENGTHS = (5, 7, 4)


def _rollout(lengths: tuple[int, ...] = LENGTHS, seed: int = 0) -> Demonstrations:
    """Short random-action Pendulum episodes; the second one is flagged terminated at its end."""
    env = gym.make("Pendulum-v1", **ENV_KWARGS)
    env.action_space.seed(seed)
    cols: dict[str, list] = {k: [] for k in ("obs", "acts", "next_obs", "rewards", "terminated")}
    for e, length in enumerate(lengths):
        obs, _ = env.reset(seed=seed + e)
        for t in range(length):
            act = env.action_space.sample()
            next_obs, reward, _, _, _ = env.step(act)
            # Pendulum never terminates, so mark one episode end by hand to exercise terminations.
            done = e == 1 and t == length - 1
            for k, v in zip(cols, (obs, act, next_obs, reward, done)):
                cols[k].append(v)
            obs = next_obs
    env.close()
    return Demonstrations(
        obs=np.asarray(cols["obs"], np.float32), acts=np.asarray(cols["acts"], np.float32),
        next_obs=np.asarray(cols["next_obs"], np.float32), rewards=np.asarray(cols["rewards"], np.float32),
        terminated=np.asarray(cols["terminated"], bool), episode_lengths=np.asarray(lengths, np.int64),
        env_id="Pendulum-v1", env_kwargs=dict(ENV_KWARGS), meta={"source": "random"},
    )


@pytest.fixture(scope="module")
def demos() -> Demonstrations:
    return _rollout()


def _assert_same(a: Demonstrations, b: Demonstrations) -> None:
    for name in ("obs", "acts", "next_obs", "rewards", "terminated", "episode_lengths"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
    np.testing.assert_allclose(a.episode_returns, b.episode_returns)
    assert (a.env_id, a.env_kwargs) == (b.env_id, b.env_kwargs)


def test_round_trip(demos: Demonstrations, tmp_path: Path) -> None:
    before = os.environ.get("MINARI_DATASETS_PATH")
    ds = to_minari(demos, "rlgen/pendulum-random-v0", root=tmp_path, author="tester", description="random")
    # The explicit root must not leak into the process environment.
    assert os.environ.get("MINARI_DATASETS_PATH") == before
    assert (tmp_path / "rlgen" / "pendulum-random-v0" / "data").is_dir()

    assert ds.total_episodes == 3 and ds.total_steps == sum(LENGTHS)
    assert ds.env_spec.id == "Pendulum-v1" and ds.env_spec.kwargs["g"] == 9.0
    assert ds.env_spec.max_episode_steps == 50
    first, second = ds[0], ds[1]
    assert len(first.observations) == LENGTHS[0] + 1 and len(first.actions) == LENGTHS[0]
    np.testing.assert_array_equal(first.observations[-1], demos.next_obs[LENGTHS[0] - 1])
    assert list(first.truncations) == [False] * (LENGTHS[0] - 1) + [True] and not first.terminations.any()
    assert second.terminations[-1] and not second.truncations.any()

    back = from_minari(ds)
    _assert_same(demos, back)
    assert back.meta == {"source": "minari:rlgen/pendulum-random-v0"}
    assert back.obs.dtype == np.float32 and back.terminated.dtype == bool

    # By id, from the same root, gives the same data.
    _assert_same(demos, from_minari("rlgen/pendulum-random-v0", root=tmp_path))


def test_existing_or_malformed_id_is_one_line_error(demos: Demonstrations, tmp_path: Path) -> None:
    to_minari(demos.take_episodes(1), "taken-v0", root=tmp_path)
    with pytest.raises(DemoError, match="already exists") as err:
        to_minari(demos, "taken-v0", root=tmp_path)
    assert "\n" not in str(err.value)
    with pytest.raises(DemoError, match="not a Minari dataset id"):
        to_minari(demos, "no-version", root=tmp_path)
    assert not (tmp_path / "no-version").exists()


def test_missing_dataset_is_not_downloaded(tmp_path: Path) -> None:
    with pytest.raises(DemoError, match="is not in .*minari download D4RL/door/human-v2") as err:
        from_minari("D4RL/door/human-v2", root=tmp_path)
    assert "\n" not in str(err.value)
    assert not (tmp_path / "D4RL").exists()


def test_discrete_actions_are_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env = gym.make("CartPole-v1")
    obs, _ = env.reset(seed=0)
    observations, actions = [obs], []
    for _ in range(3):
        actions.append(env.action_space.sample())
        observations.append(env.step(actions[-1])[0])
    buffer = minari.data_collector.EpisodeBuffer(
        observations=np.asarray(observations), actions=np.asarray(actions), rewards=[1.0] * 3,
        terminations=[False] * 3, truncations=[False, False, True],
    )
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path))
    with pytest.warns(UserWarning):
        minari.create_dataset_from_buffers("cartpole-v0", [buffer], env=env)
    with pytest.raises(DemoError, match=r"Discrete\(2\) action space; .*only Box") as err:
        from_minari("cartpole-v0")
    assert "\n" not in str(err.value)

    # The other direction refuses demonstrations whose env has discrete actions too.
    demos = _rollout((2,))
    demos.env_id, demos.env_kwargs = "CartPole-v1", {}
    with pytest.raises(DemoError, match="Box"):
        to_minari(demos, "cartpole-rlgen-v0", root=tmp_path)


def test_missing_minari_names_the_extra(demos: Demonstrations, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "minari", None)  # makes 'import minari' raise ImportError
    for call in (lambda: to_minari(demos, "x-v0"), lambda: from_minari("x-v0")):
        with pytest.raises(DemoError, match=r"pip install 'rlgen\[minari\]'"):
            call()
