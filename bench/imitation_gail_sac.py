"""The ``imitation`` library's GAIL with SAC as its learner, on rlgen's demonstrations, for
bench/offpolicy_imitation.py.

Runs inside the ``imitation`` virtual environment (``.venv-imitation``: imitation 1.0, which pins
gymnasium 0.29 and stable-baselines3 2.2, so the tasks are the -v4 ones), reads the demonstration
file with NumPy alone and imports nothing from rlgen. Settings are imitation's documented ones for
an adversarial trainer (its ``BasicRewardNet`` with ``RunningNorm``, 4 discriminator updates a round,
demonstration batches of ``--demo-batch``), with stable-baselines3's SAC defaults as the learner
(``learning_starts`` set as rlgen's recipe); imitation computes the reward when a transition is
collected and keeps it in SAC's replay buffer. Every ``--eval-every`` steps the policy is evaluated
on 10 episodes with sampled actions; at the end on 50 with mean and with sampled actions.

    .venv-imitation/bin/python bench/imitation_gail_sac.py --demos demos/hopper-v5.npz \\
        --env Hopper-v4 --trajectories 10 --steps 100000 --out imitation-sac-hopper.json
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch
from imitation.algorithms.adversarial.gail import GAIL
from imitation.data import types
from imitation.rewards.reward_nets import BasicRewardNet
from imitation.util.networks import RunningNorm
from imitation.util.util import make_vec_env
from stable_baselines3 import SAC
from stable_baselines3.common.evaluation import evaluate_policy


def load_trajectories(path: str, n: int) -> list:
    with np.load(path, allow_pickle=False) as d:
        lengths = d["episode_lengths"][:n] if n else d["episode_lengths"]
        starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
        trajs = []
        for s, steps in zip(starts, lengths):
            e = s + steps
            obs = np.concatenate([d["obs"][s:e], d["next_obs"][e - 1:e]])
            trajs.append(types.Trajectory(obs=obs, acts=d["acts"][s:e], infos=None,
                                          terminal=bool(d["terminated"][e - 1])))
    return trajs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--demos", required=True)
    parser.add_argument("--env", required=True)
    parser.add_argument("--trajectories", type=int, default=10)
    parser.add_argument("--steps", type=int, default=100_000)
    parser.add_argument("--round-steps", type=int, default=1_000, help="learner steps between discriminator rounds")
    parser.add_argument("--demo-batch", type=int, default=256)
    parser.add_argument("--learning-starts", type=int, default=5_000)
    parser.add_argument("--eval-every", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    torch.set_num_threads(1)
    rng = np.random.default_rng(args.seed)
    venv = make_vec_env(args.env, rng=rng, n_envs=1)
    learner = SAC("MlpPolicy", venv, seed=args.seed, learning_starts=args.learning_starts, verbose=0)
    reward_net = BasicRewardNet(venv.observation_space, venv.action_space, normalize_input_layer=RunningNorm)
    trainer = GAIL(demonstrations=load_trajectories(args.demos, args.trajectories), demo_batch_size=args.demo_batch,
                   gen_replay_buffer_capacity=args.round_steps, n_disc_updates_per_round=4, venv=venv,
                   gen_algo=learner, reward_net=reward_net, gen_train_timesteps=args.round_steps,
                   allow_variable_horizon=True)
    eval_env = make_vec_env(args.env, rng=np.random.default_rng(args.seed + 1000), n_envs=1)
    curve, start, done = [], time.time(), 0
    while done < args.steps:
        chunk = min(args.eval_every, args.steps - done)
        trainer.train(chunk)
        done += chunk
        mean, std = evaluate_policy(learner, eval_env, n_eval_episodes=10, deterministic=False)
        curve.append({"step": done, "sampled_return": float(mean), "sampled_std": float(std)})
        print(json.dumps(curve[-1]), flush=True)
    wall = time.time() - start
    final = {}
    for key, deterministic in (("return_mean", True), ("return_sampled", False)):
        rewards, _ = evaluate_policy(learner, eval_env, n_eval_episodes=50, deterministic=deterministic,
                                     return_episode_rewards=True)
        final[key] = float(np.mean(rewards))
    json.dump({"env": args.env, "trajectories": args.trajectories, "steps": done, "seed": args.seed,
               "wall_time_s": round(wall, 1), "curve": curve, "fresh_episodes": 50, **final},
              open(args.out, "w"), indent=2)


if __name__ == "__main__":
    main()
