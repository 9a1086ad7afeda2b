"""The shipped planner + IDM as a policy in a plain Gymnasium loop, closed loop (a new chunk from the real
frame every 8 actions). Any policy with reset(scene) / act(observation) fits here; so does your own.

    python examples/gym_closed_loop.py [ENV_ID] [SEED]"""
import sys

import gymnasium
import numpy as np

import vid2act  # noqa: F401  (registers vid2act/Reach-v0, Push-v0, PickPlace-v0, Stack-v0)
from vid2act.policies import load_policy
from vid2act.sim.env import Observation

env_id, seed = sys.argv[1] if len(sys.argv) > 1 else "vid2act/PickPlace-v0", int(sys.argv[2]) if len(sys.argv) > 2 else 1_000_007
env = gymnasium.make(env_id, render_mode="rgb_array")
policy = load_policy("plan")  # the shipped planner and IDM; "bc", "oracle", "random", ... fit the same loop
observation, info = env.reset(seed=seed, options={"split": "test"})
policy.reset(env.unwrapped.scene)
steps, done = 0, False
while not done:
    actions = policy.act(Observation(observation["pixels"], observation["depth"], steps, observation["ee_target"]))
    if len(actions) == 0:  # the policy has nothing more to do
        break
    for action in actions:
        observation, reward, terminated, truncated, info = env.step(np.float32(action))
        steps, done = steps + 1, terminated or truncated
        if done:
            break
print(f"{info['instruction']!r}: {'success' if info['is_success'] else 'failure'} after {steps} steps")
