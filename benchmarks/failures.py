"""Why the failed episodes of an eval failed: each one's actions replayed from its scene (execution is
deterministic, so the replay is the episode), watching the instruction's object.

Per failed episode: whether the task was solved at some step and then undone (`solved_at`; eval folders
written before it was recorded get it from here), whether the object tipped over (tilted more than 20°
off upright, when), how close it came to its goal and where it ended. Then per family: failures, solved
then undone, tipped.

    python benchmarks/failures.py EVAL_FOLDER [EVAL_FOLDER ...]"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from vid2act.sim.env import SceneWorld

TIPPED_DEGREES = 20.0


def tilt_degrees(client, body: int) -> float:
    """How far the body's z axis leans off the world's (blocks and cylinders start upright)."""
    _, quaternion = client.getBasePositionAndOrientation(body)
    up = client.getMatrixFromQuaternion(quaternion)[8]
    return float(np.degrees(np.arccos(np.clip(abs(up), 0.0, 1.0))))


def replay(folder: Path) -> dict:
    scene = json.loads((folder / "scene" / "scene.json").read_text())
    actions = np.asarray(json.loads((folder / "actions.json").read_text())["actions"], np.float32)
    solved_at = tipped_at = None
    closest = np.inf
    with SceneWorld(scene) as env:
        world, goal = env.world, env.goal
        body = world.objects.get(goal.get("object"))  # a reach has none
        for step, action in enumerate(actions, start=1):
            world.step(action)
            if solved_at is None and env.is_success():
                solved_at = step
            if body is not None and tipped_at is None and tilt_degrees(world.client, body) > TIPPED_DEGREES:
                tipped_at = step
            distance = env.task.distances(world, goal)
            closest = min(closest, distance.get("object_to_target_xy", distance.get("gripper_to_target_xy", np.inf)))
        final = env.task.distances(world, goal)
    return {"solved_at": solved_at, "tipped_at": tipped_at, "closest_cm": round(100 * float(closest), 1),
            "final": {k: round(100 * v, 1) for k, v in final.items()}, "object": goal.get("object")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("evals", nargs="+", type=Path)
    args = parser.parse_args()
    for folder in args.evals:
        info = json.loads((folder / "eval_info.json").read_text())
        families: dict[str, dict] = {}
        print(f"{folder}:")
        for record in info["episodes"]:
            family = families.setdefault(record["task"], {"episodes": 0, "failed": 0, "undone": 0, "tipped": 0})
            family["episodes"] += 1
            if record["success"]:
                continue
            found = replay(folder / record["folder"])
            family["failed"] += 1
            family["undone"] += found["solved_at"] is not None
            family["tipped"] += found["tipped_at"] is not None
            print(f"  {record['task']}-{record['seed']} ({found['object']}): solved at {found['solved_at']}, "
                  f"tipped at {found['tipped_at']}, closest {found['closest_cm']} cm, final {found['final']} (cm), "
                  f"ended by {record['ended_by']}")
        for name, f in families.items():
            print(f"  {name}: {f['failed']} of {f['episodes']} failed; {f['undone']} solved at some step and undone; "
                  f"{f['tipped']} tipped the object over")


if __name__ == "__main__":
    main()
