"""The ``imitation`` library's GAIL on rlgen's demonstrations, for bench/gail.py.

Runs inside a separate virtual environment holding ``imitation`` (which pins gymnasium 0.29
and stable-baselines3 2.2), so it reads the demonstration file with NumPy alone and imports
nothing from rlgen. The learner and discriminator are set to match rlgen's recipe (TRPO with
the recipe's settings, a 2x100 tanh discriminator, the same minibatch size and updates per
round), so the comparison is between the two GAIL implementations rather than their defaults.

    .venv-imitation/bin/python bench/imitation_gail.py --demos demos/hopper-v5.npz \\
        --env Hopper-v4 --trajectories 25 --steps 2000000 --out result.json
"""

from __future__ import annotations

import argparse
import json
import time

import gymnasium as gym
import numpy as np
import torch
from imitation.algorithms.adversarial.gail import GAIL
from imitation.algorithms.bc import BC
from imitation.data import types
from imitation.rewards.reward_nets import BasicRewardNet
from imitation.util.networks import RunningNorm
from imitation.util.util import make_vec_env
from sb3_contrib import TRPO
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.vec_env import VecNormalize


def load_trajectories(path: str, n: int) -> tuple[list, dict]:
    with np.load(path, allow_pickle=False) as d:
        meta = json.loads(str(d["meta"]))
        lengths = d["episode_lengths"][:n] if n else d["episode_lengths"]
        starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
        trajs = []
        for s, n_steps in zip(starts, lengths):
            e = s + n_steps
            obs = np.concatenate([d["obs"][s:e], d["next_obs"][e - 1:e]])
            trajs.append(types.TrajectoryWithRew(obs=obs, acts=d["acts"][s:e], infos=None,
                                                 terminal=bool(d["terminated"][e - 1]), rews=d["rewards"][s:e]))
    return trajs, meta


def bc_init(learner, train_env, trajs: list, *, epochs: int, seed: int) -> None:
    """Clone the demonstrations into the learner's policy with imitation's BC, on observations
    normalised by the demonstrations' statistics, which the training env then starts from."""
    obs = np.concatenate([t.obs[:-1] for t in trajs])
    train_env.obs_rms.mean, train_env.obs_rms.var, train_env.obs_rms.count = obs.mean(0), obs.var(0), float(len(obs))
    normed = [types.Trajectory(obs=train_env.normalize_obs(t.obs).astype(np.float32), acts=t.acts, infos=None,
                               terminal=t.terminal) for t in trajs]
    trainer = BC(observation_space=train_env.observation_space, action_space=train_env.action_space,
                 rng=np.random.default_rng(seed), policy=learner.policy, demonstrations=normed, batch_size=256,
                 optimizer_kwargs={"lr": 1e-3})
    trainer.train(n_epochs=epochs, progress_bar=False, log_interval=10**9)


def eval_curve(learner, train_env, eval_env, every: int, episodes: int = 5, partial_path: str | None = None):
    """A per-round callback for imitation's trainer: evaluate on the env's reward every ``every`` steps,
    rewriting ``partial_path`` each time so an interrupted run still leaves its curve."""
    curve: list[list[float]] = []
    sampled: list[list[float]] = []
    state = {"next": every}

    def on_round(_round: int) -> None:
        if learner.num_timesteps >= state["next"]:
            eval_env.obs_rms = train_env.obs_rms
            for points, deterministic in ((curve, True), (sampled, False)):
                r, _ = evaluate_policy(learner, eval_env, n_eval_episodes=episodes, return_episode_rewards=True,
                                       deterministic=deterministic)
                points.append([int(learner.num_timesteps), float(np.mean(r)), float(np.std(r))])
            if partial_path:
                with open(partial_path, "w") as f:
                    json.dump({"library": "imitation", "finished": False, "curve": curve, "sampled_curve": sampled},
                              f, indent=2)
            while state["next"] <= learner.num_timesteps:
                state["next"] += every

    return curve, sampled, on_round


# The v5 MuJoCo envs' keyword arguments under their v4 names, where the v4 env has the same setting.
V4_NAMES = {"include_cfrc_ext_in_observation": "use_contact_forces"}
# v5 switches for observation parts that a v4 env always appends after positions and velocities:
# left out by keeping the observation's first dimensions (see FirstDims).
V4_TRAILING = ("include_cinert_in_observation", "include_cvel_in_observation",
               "include_qfrc_actuator_in_observation")


def v4_kwargs(env_id: str, kwargs: dict) -> dict:
    """The demonstrations' env kwargs (recorded on a v5 env) for ``env_id`` (a v4 env here)."""
    if not env_id.endswith("-v4"):
        return dict(kwargs)
    if env_id.startswith("Humanoid"):  # v4 Humanoid has no switch for contact forces either: all trail
        return {k: v for k, v in kwargs.items() if k not in V4_TRAILING + ("include_cfrc_ext_in_observation",)}
    return {V4_NAMES.get(k, k): v for k, v in kwargs.items() if k not in V4_TRAILING}


class FirstDims(gym.ObservationWrapper):
    """Keep an observation's first ``n`` dimensions: a v4 env's positions and velocities, which is
    what a v5 env gives with its other observation parts switched off."""

    def __init__(self, env: gym.Env, n: int) -> None:
        super().__init__(env)
        space = env.observation_space
        self.n = n
        self.observation_space = gym.spaces.Box(space.low[:n], space.high[:n], dtype=space.dtype)

    def observation(self, obs):
        return obs[: self.n]


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--demos", required=True)
    p.add_argument("--env", required=True)
    p.add_argument("--trajectories", type=int, default=25)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--steps", type=int, required=True)
    p.add_argument("--n-envs", type=int, default=2)
    p.add_argument("--n-steps", type=int, default=2048)
    p.add_argument("--gamma", type=float, default=0.995, help="discount of the learner and of its reward normalisation")
    p.add_argument("--eval-every", type=int, default=100_000)
    p.add_argument("--bc-epochs", type=int, default=0,
                   help="start the learner by imitation's behaviour cloning for this many epochs (0: from scratch)")
    p.add_argument("--out", required=True)
    args = p.parse_args()
    torch.set_num_threads(1)

    trajs, meta = load_trajectories(args.demos, args.trajectories)
    env_kwargs = v4_kwargs(args.env, meta.get("env_kwargs", {}))
    obs_dim = trajs[0].obs.shape[1]
    wrap = [lambda env, _: FirstDims(env, obs_dim) if env.observation_space.shape[0] > obs_dim else env]
    venv = make_vec_env(args.env, n_envs=args.n_envs, rng=np.random.default_rng(args.seed),
                        env_make_kwargs=env_kwargs, post_wrappers=wrap)
    learner = TRPO("MlpPolicy", VecNormalize(venv, gamma=args.gamma), n_steps=args.n_steps, batch_size=256, gamma=args.gamma,
                   gae_lambda=0.97, target_kl=0.01, cg_damping=0.1, cg_max_steps=15, n_critic_updates=10,
                   learning_rate=1e-3, policy_kwargs={"net_arch": [100, 100], "activation_fn": torch.nn.Tanh},
                   seed=args.seed)
    reward_net = BasicRewardNet(venv.observation_space, venv.action_space, normalize_input_layer=RunningNorm,
                                hid_sizes=(100, 100), activation=torch.nn.Tanh)
    trainer = GAIL(demonstrations=trajs, demo_batch_size=512, gen_replay_buffer_capacity=args.n_steps * args.n_envs,
                   n_disc_updates_per_round=4, venv=venv, gen_algo=learner, reward_net=reward_net,
                   allow_variable_horizon=True, disc_opt_kwargs={"lr": 3e-4})
    # The policy sees normalised observations, as in rlgen; normalisation goes above imitation's
    # buffering wrapper so the discriminator, like rlgen's, compares raw policy observations with
    # raw demonstrations (its input layer normalises both alike).
    train_env = VecNormalize(trainer.venv_train, norm_obs=True, norm_reward=True, gamma=args.gamma)
    learner.set_env(train_env)
    if args.bc_epochs:
        bc_init(learner, train_env, trajs, epochs=args.bc_epochs, seed=args.seed)
    eval_env = VecNormalize(make_vec_env(args.env, n_envs=1, rng=np.random.default_rng(args.seed + 10_000),
                                         env_make_kwargs=env_kwargs, post_wrappers=wrap),
                            norm_obs=True, norm_reward=False, training=False)
    curve, sampled_curve, on_round = eval_curve(learner, train_env, eval_env, args.eval_every,
                                                partial_path=args.out + ".partial")
    start = time.time()
    trainer.train(args.steps, callback=on_round)  # each round: one learner rollout + discriminator updates
    wall = time.time() - start
    eval_env.obs_rms = train_env.obs_rms
    returns, _ = evaluate_policy(learner, eval_env, n_eval_episodes=10, return_episode_rewards=True)
    sampled, _ = evaluate_policy(learner, eval_env, n_eval_episodes=10, return_episode_rewards=True,
                                 deterministic=False)
    result = {"library": "imitation", "env": args.env, "return": float(np.mean(returns)), "std": float(np.std(returns)),
              "sampled_return": float(np.mean(sampled)), "sampled_std": float(np.std(sampled)),
              "env_steps": int(learner.num_timesteps), "wall_time_s": round(wall, 1),
              "steps_per_s": round(learner.num_timesteps / wall, 1), "curve": curve, "sampled_curve": sampled_curve}
    with open(args.out, "w") as f:
        json.dump(result, f, indent=2)


if __name__ == "__main__":
    main()
