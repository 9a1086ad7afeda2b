"""What every training loop shares: the accelerator, the learning-rate schedule, the run folder, the
held-out split, the frames in memory and their normalization, checkpoints, and the curves a run logs as it
goes. Each loop itself stays in its own file, readable top to bottom."""
from __future__ import annotations

import functools
import math
import os
from pathlib import Path
from typing import Callable

import torch

from vid2act.data.dataset import window
from vid2act.devices import check_device
from vid2act.errors import UsageError, Vid2ActError
from vid2act.formats import load_json
from vid2act.outputs import LOCK_FILE, clear_folder, lock_folder, output_dir, recover_leftovers, write_bytes, write_json

CHECKPOINT = "checkpoint"


def make_accelerator(device: str, mixed_precision: str = "no", report_to: str = "none", run: Path | None = None):
    """The accelerator of a training run; with `report_to` tensorboard its trackers write to RUN/logs/."""
    from accelerate import Accelerator
    check_device(device)
    if mixed_precision not in ("no", "bf16", "fp16"):
        raise UsageError(f"unknown --mixed-precision {mixed_precision!r}; choose no, bf16 or fp16")
    if mixed_precision == "fp16" and device == "cpu":
        raise UsageError("--mixed-precision fp16 needs a GPU; on a CPU use bf16")
    check_report_to(report_to)
    trackers = {} if report_to == "none" else {"log_with": report_to, "project_dir": str(Path(run) / "logs")}
    from accelerate.state import AcceleratorState
    if AcceleratorState._shared_state.get("_mixed_precision", mixed_precision) != mixed_precision:
        # accelerate keeps the first run's precision for the whole process and refuses another: a second run
        # in one process (a notebook, the tests) starts the state afresh; the process group stays
        AcceleratorState._reset_state()
    return Accelerator(cpu=device == "cpu", mixed_precision=mixed_precision, **trackers)


def learning_rate(config, step: int) -> float:
    """Linear warm-up over `config.warmup` steps, then cosine decay to a tenth of `config.lr`."""
    if step < config.warmup:
        return config.lr * (step + 1) / config.warmup
    progress = (step - config.warmup) / max(1, config.steps - config.warmup)
    return config.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))


def cosine_step(optimizer, loss, peak_lr: float, step: int, steps: int) -> None:
    """One optimizer step at a cosine-decayed learning rate, no warm-up (the small nets' schedule)."""
    for group in optimizer.param_groups:
        group["lr"] = peak_lr * 0.5 * (1 + math.cos(math.pi * step / steps))
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()


_run_locks: list = []  # the run folders' locks that the training functions running now took


def releases_run_lock(train: Callable) -> Callable:
    """Close the run folder's lock that `train` took (start_run) when it returns or raises. Left to the garbage
    collector, a lock outlives its function whenever a traceback keeps the frame alive, and the next run in the
    same process (a notebook, the tests) is refused as if another training were writing the folder."""
    @functools.wraps(train)
    def wrapper(*args, **kwargs):
        held = len(_run_locks)
        try:
            return train(*args, **kwargs)
        finally:
            while len(_run_locks) > held:
                _run_locks.pop().close()
    return wrapper


RUN_FILE = "run.json"  # what a run folder is: the command that writes it and its settings, from its first moment
RUN_FORMAT = "vid2act.run/1"


def prepare_run(config, command: str, resume: bool, force: bool, inputs: dict) -> None:
    """Before any work, on every process: --out must stay apart from the run's `inputs` ({--option: path}), and
    what it holds must suit the flags: nothing (or a run of `command` being resumed with the same settings), or
    --force."""
    from vid2act.outputs import check_apart, check_writable_place
    run = Path(config.out)
    check_apart({"--out": config.out}, inputs)
    check_writable_place(run)
    if os.path.lexists(run) and not run.is_dir():
        raise UsageError(f"--out {run} is a file; a run is a folder")
    if not run.exists() or all(p.name == LOCK_FILE for p in run.iterdir()):
        return
    if not resume:
        if not force:
            raise UsageError(f"{run} already exists; pass --resume to continue it or --force to start over")
        return
    then = None
    if (run / RUN_FILE).exists():
        recorded = load_json(run / RUN_FILE, "run record")
        if recorded.get("command") != command:
            raise UsageError(f"{run} is a `vid2act {recorded.get('command')}` run, not a `vid2act {command}` one; "
                             f"resume it with its own command, or choose another --out")
        then = recorded.get("config")
    elif (run / CHECKPOINT / "state.json").exists():  # a run from before run records
        then = load_json(run / CHECKPOINT / "state.json", "checkpoint state").get("config")
    if not isinstance(then, dict):
        raise UsageError(f"{run} holds no `vid2act {command}` run to resume (no {RUN_FILE} or checkpoint); choose "
                         "another --out, or pass --force to start over there")
    check_same_settings(run, then, config_json(config), command)


def start_run(accelerator, run: Path, config, command: str, resume: bool, force: bool,
              on_message: Callable[[str], None]) -> None:
    """Make and lock the run folder on the main process (for a function decorated with releases_run_lock) and
    record what it is; `prepare_run` has checked it. A run another training is writing is refused."""
    if accelerator.is_main_process:
        _run_locks.append(lock_folder(run, "train"))
        prepare_run(config, command, resume, force, {})  # again, under the lock (the inputs were checked)
        if force and not resume:
            clear_folder(run)
        recover_leftovers(run)  # a run killed while it wrote a checkpoint or its model
        if resume and not (run / CHECKPOINT).exists():
            on_message(f"no checkpoint in {run} yet: starting from step 0")
        if not (run / RUN_FILE).exists():
            write_json(run / RUN_FILE, {"format": RUN_FORMAT, "command": command, "config": config_json(config)})
    accelerator.wait_for_everyone()


WATCHING = ("report_to", "out")  # how a run is watched, and where it lies (a run folder may move), not what it computes


def check_same_settings(run: Path, then: dict, now: dict, command: str = "train") -> None:
    """A run resumes only with the settings it was started with (how it is watched may change); the refusal
    names the options that differ, in one line."""
    import reprlib
    changed = [k for k in sorted(set(then) | set(now)) if k not in WATCHING and then.get(k) != now.get(k)]
    if not changed:
        return
    if any(k not in now for k in changed) or any(k not in then for k in changed):
        raise UsageError(f"{run} is a run of another kind than `vid2act {command}`; choose another --out")
    short = reprlib.Repr()
    short.maxstring, short.maxother, short.maxlist = 30, 30, 4
    listed = "; ".join(f"--{k.replace('_', '-')} {short.repr(then[k])} then, {short.repr(now[k])} now"
                       for k in changed[:3])
    more = f" and {len(changed) - 3} more" if len(changed) > 3 else ""
    raise UsageError(f"{run} was started with other settings ({listed}{more}); resume with the same options")


def shard(episodes: list[int], accelerator) -> list[int]:
    """This process's share of the training episodes (every n-th of n processes): each process holds and
    draws from its own shard, so memory per process shrinks with their number."""
    mine = episodes[accelerator.process_index::accelerator.num_processes]
    if not mine:
        raise UsageError(f"{len(episodes)} training episodes cannot be shared among {accelerator.num_processes} "
                         f"processes; collect more or start fewer")
    return mine


def held_out_split(dataset, fraction: float, where: str) -> tuple[list[int], list[int]]:
    """Training and validation episode indices: the last `fraction` of the episodes are held out."""
    held_out = max(1, round(len(dataset) * fraction))
    if len(dataset) - held_out < 1:
        raise Vid2ActError(f"{where} has {len(dataset)} episodes; need at least 2 (one for validation)")
    return list(range(len(dataset) - held_out)), list(range(len(dataset) - held_out, len(dataset)))


# --- the frames in memory ------------------------------------------------------------------------------------
class FrameStore:
    """Some episodes' frames in memory, one tensor for all (rgb uint8 [F, H, W, 3], depth float16 [F, H, W]
    or None), and where each episode starts: every trainer turns (episode, frame) into rows here."""

    def __init__(self, rgb: list, depth: list | None):
        self.rgb = torch.cat([torch.as_tensor(r) for r in rgb])
        self.depth = torch.cat([torch.as_tensor(d) for d in depth]) if depth else None
        self.lengths = torch.tensor([len(r) for r in rgb])
        self.starts = torch.cumsum(self.lengths, 0) - self.lengths

    def rows(self, episodes: torch.Tensor, first: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
        """Rows [B, K] of frames `first + offsets` of `episodes` [B], held at each episode's ends."""
        held = window(first[:, None], offsets[None, :], self.lengths[episodes][:, None])
        return self.starts[episodes][:, None] + held

    def depth_normalization(self) -> dict:
        """Mean and std of the depth (metres) over a sample of about 2,000 frames; 0 and 1 without depth."""
        if self.depth is None:
            return {"mean": 0.0, "std": 1.0}
        sample = self.depth[:: max(1, len(self.depth) // 2000)].float()
        return {"mean": float(sample.mean()), "std": float(sample.std())}


# --- checkpoints: model, EMA and optimizer state as safetensors, the rest as JSON ------------------------------
def config_json(config) -> dict:
    """A config as it comes back from disk (tuples as lists)."""
    import json
    from dataclasses import asdict
    return json.loads(json.dumps(asdict(config)))


def save_checkpoint(run: Path, step: int, model, optimizer, config, history: list[dict], seconds: float,
                    ema: dict | None = None) -> None:
    """RUN/checkpoint/, replaced in one rename: what `load_checkpoint` needs to continue at `step`."""
    from safetensors.torch import save
    state = optimizer.state_dict()
    tensors = {f"{param}.{name}": value.contiguous() for param, values in state["state"].items()
               for name, value in values.items()}
    with output_dir(run / CHECKPOINT, force=True) as tmp:
        write_bytes(tmp / "model.safetensors",
                    save({k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}))
        if ema is not None:
            write_bytes(tmp / "ema.safetensors", save({k: v.cpu().contiguous() for k, v in ema.items()}))
        write_bytes(tmp / "optimizer.safetensors", save(tensors))
        write_json(tmp / "state.json", {"step": step, "config": config_json(config), "history": history,
                                        "train_seconds": seconds, "param_groups": state["param_groups"]})


def load_checkpoint(run: Path, model, optimizer, config, ema: dict | None = None) -> tuple[int, list[dict], float]:
    """Model, optimizer (and EMA) state from RUN/checkpoint/, refused if the run was started with other
    settings; returns the step, the history and the training seconds so far."""
    import json

    from safetensors.torch import load_file
    folder = run / CHECKPOINT
    state = json.loads((folder / "state.json").read_text())
    check_same_settings(run, state["config"], config_json(config))  # prepare_run checked: a second guard
    model.load_state_dict(load_file(str(folder / "model.safetensors")))
    if ema is not None:
        ema.update(load_file(str(folder / "ema.safetensors")))
    per_param: dict[int, dict] = {}
    for key, value in load_file(str(folder / "optimizer.safetensors")).items():
        param, name = key.split(".", 1)
        per_param.setdefault(int(param), {})[name] = value
    optimizer.load_state_dict({"state": per_param, "param_groups": state["param_groups"]})
    return state["step"], state["history"], state["train_seconds"]


# --- what a run logs as it goes ----------------------------------------------------------------------------
REPORT_TO = ("none", "tensorboard")
CURVES_EVERY = 10  # steps between two points of the loss and learning-rate curves


def check_report_to(report_to: str) -> None:
    if report_to not in REPORT_TO:
        raise UsageError(f"unknown --report-to {report_to!r}; choose {' or '.join(REPORT_TO)}")
    if report_to == "tensorboard":
        try:
            import tensorboard  # noqa: F401
        except ImportError:
            raise UsageError("--report-to tensorboard needs the tensorboard package: "
                             "pip install 'vid2act[tensorboard]'") from None


def _scalars(values: dict, prefix: str = "") -> dict[str, float]:
    """The numbers of a (nested) metrics dict, flattened to 'a/b' names."""
    out = {}
    for key, value in values.items():
        if isinstance(value, dict):
            out.update(_scalars(value, f"{prefix}{key}/"))
        elif isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            out[f"{prefix}{key}"] = float(value)
    return out


class Curves:
    """The loss and learning rate every `CURVES_EVERY` steps and every evaluation's metrics, each with the step
    and the minutes of training: kept in RUN/curves.json (a resumed run continues it from its checkpoint's
    step), drawn to RUN/curves.png at each evaluation and at the end, and, with --report-to tensorboard, sent
    to accelerate's trackers (event files in RUN/logs/). Only the main process writes."""

    def __init__(self, run: Path, accelerator, start_step: int, report_to: str, config: dict):
        self.last = config["steps"]
        import json
        self.run, self.accelerator, self.report_to = Path(run), accelerator, report_to
        self.main = accelerator.is_main_process
        self.points = {"train": [], "validation": []}
        path = self.run / "curves.json"
        if self.main and start_step and path.exists():
            kept = json.loads(path.read_text())
            self.points = {k: [p for p in v if p["step"] <= start_step] for k, v in kept.items()}
        if report_to != "none":
            accelerator.init_trackers(self.run.name, config={k: v if isinstance(v, (int, float, str, bool)) else str(v)
                                                             for k, v in config.items()})

    def step(self, step: int, loss: float, lr: float, minutes: float) -> None:
        if step % CURVES_EVERY and step not in (1, self.last):
            return
        point = {"step": step, "minutes": round(minutes, 3), "loss": loss, "lr": lr}
        if self.main:
            self.points["train"].append(point)
        if self.report_to != "none":
            self.accelerator.log({"train/loss": loss, "train/lr": lr}, step=step)

    def evaluation(self, step: int, minutes: float, metrics: dict) -> None:
        values = _scalars(metrics)
        if self.main:
            self.points["validation"].append({"step": step, "minutes": round(minutes, 3), **values})
            self.save()
        if self.report_to != "none":
            self.accelerator.log({f"validation/{k}": v for k, v in values.items()}, step=step)

    def save(self) -> None:
        """curves.json and curves.png, each replaced in one rename."""
        if not self.main:
            return
        from vid2act.outputs import write_bytes, write_json
        write_json(self.run / "curves.json", self.points)
        write_bytes(self.run / "curves.png", self.draw())

    def finish(self) -> None:
        self.save()
        if self.report_to != "none":
            self.accelerator.end_training()

    def draw(self) -> bytes:
        """PNG: loss against step and against minutes, the learning rate, and each validation metric."""
        import io

        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        train, validation = self.points["train"], self.points["validation"]
        names = sorted({k for p in validation for k in p if k not in ("step", "minutes")})
        panels = 3 + len(names)
        columns = min(4, panels)
        rows = math.ceil(panels / columns)
        figure, axes = plt.subplots(rows, columns, figsize=(3.3 * columns, 2.5 * rows), dpi=90, squeeze=False)
        axes = axes.ravel()
        steps = [p["step"] for p in train]
        axes[0].plot(steps, [p["loss"] for p in train], lw=0.8)
        axes[0].set(title="training loss", xlabel="step", yscale="log")
        axes[1].plot([p["minutes"] for p in train], [p["loss"] for p in train], lw=0.8, color="tab:green")
        axes[1].set(title="training loss", xlabel="minutes", yscale="log")
        axes[2].plot(steps, [p["lr"] for p in train], lw=0.8, color="tab:orange")
        axes[2].set(title="learning rate", xlabel="step")
        for ax, name in zip(axes[3:], names):
            points = [(p["step"], p[name]) for p in validation if name in p]
            ax.plot(*zip(*points), marker="o", ms=3, color="tab:red")
            ax.set(title=f"validation {name}", xlabel="step")
        for ax in axes[panels:]:
            ax.axis("off")
        for ax in axes[:panels]:
            ax.grid(alpha=0.3)
            ax.title.set_fontsize(8)
            ax.tick_params(labelsize=7)
        figure.suptitle(f"{self.run.name}: step {steps[-1] if steps else 0}", fontsize=9)
        figure.tight_layout()
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png")
        plt.close(figure)
        return buffer.getvalue()
