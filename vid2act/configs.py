"""Every trainer's settings, one frozen dataclass each: the single source of every option's name, type,
default and help. `vid2act train idm|video|bc` builds its options from these fields
(`vid2act.cli.common.options_from`), the library's `train` functions take them, and each run writes their
resolved values next to its outputs. Kept apart from the training loops so that the command line starts
without importing torch or diffusers."""
from __future__ import annotations

import math
from dataclasses import dataclass, fields

from vid2act.devices import check_device
from vid2act.errors import MAX_WORKERS, UsageError, check_positive, check_range
from vid2act.options import option
from vid2act.shipped import path_of
from vid2act.spec import TASK_FAMILIES, seed_range

POLICIES = ("plan", "sketch", "gt-video", "oracle", "bc", "random")  # `vid2act.policies.make_policy` builds each
# Plans the plan policy draws per replan, keeping the one closest to its sketch (`vid2act.policies`): measured,
# 64 -> 81 of 100 closed-loop pushes and stacks against 1, and 8 no better than 4 (docs/results.md).
BEST_OF = 4
MAX_BEST_OF = 64  # as generate's --num-samples
IDM_HEADS = ("pose", "delta")  # what the IDM reads off its window (`vid2act.idm.model`)
REPORT_TO_HELP = ("none, or tensorboard: the curves also as event files in RUN/logs/ (curves.png is written "
                  "either way).")


def check_sampling(steps: int, guidance: float, samples: int) -> None:
    """Denoising steps, guidance scale and samples a planner may be asked for."""
    if not 1 <= steps <= 1000:
        raise UsageError(f"--steps must lie between 1 and 1000 (got {steps})")
    if not math.isfinite(guidance) or not 0 <= guidance <= 100:
        raise UsageError(f"--guidance must be a number between 0 and 100 (got {guidance})")
    if not 1 <= samples <= MAX_BEST_OF:
        raise UsageError(f"--num-samples must lie between 1 and {MAX_BEST_OF} (got {samples})")


@dataclass(frozen=True, kw_only=True)
class FrameNetConfig:
    """What the two small frame-reading nets (the IDM and the BC baseline) are trained with alike."""
    data: str = option(help="Dataset folder (from `vid2act collect`).", short="-d", reads="path")
    out: str = option(help="Run folder: checkpoints, metrics.json, curves, the trained model.", short="-o")
    modalities: str = option("rgbd", "rgb or rgbd (RGB plus metric depth).")
    width: int = option(16, "Channels of the first conv layer.")
    steps: int = option(6000, "Optimizer steps.")
    batch_size: int = option(128, "Samples per step and process.")
    lr: float = option(2e-3, "Peak learning rate (warm-up, then cosine decay).")
    weight_decay: float = option(1e-4, "AdamW weight decay.", advanced=True)
    warmup: int = option(200, "Steps of linear learning-rate warm-up.", advanced=True)
    val_fraction: float = option(0.1, "Share of the episodes (the last ones) held out for validation.",
                                 advanced=True)
    checkpoint_every: int = option(250, "Checkpoint every N steps.")
    seed: int = option(0, "Seeds initialisation and batch sampling.")
    device: str = option("cpu", "cpu, cuda or mps.")
    report_to: str = option("none", REPORT_TO_HELP)

    def check(self) -> None:
        if self.modalities not in ("rgb", "rgbd"):
            raise UsageError(f"unknown --modalities {self.modalities!r}; choose rgb or rgbd")
        check_positive(self, ("steps", "batch_size", "lr", "width", "checkpoint_every"))
        if not 0 < self.val_fraction < 1:
            raise UsageError("the validation fraction must lie between 0 and 1")


@dataclass(frozen=True, kw_only=True)
class IDMTrainConfig(FrameNetConfig):
    head: str = option("pose", "pose (per-frame grasp point, differenced) or delta (UniPi: a frame pair to its "
                               "action).")
    context: int = option(1, "pose head: frames on each side of the centre frame.")
    eval_every: int = option(1000, "Validate every N steps.")
    planner: str = option("", "Also learn to read the keyframes this planner (folder or shipped name) draws: half "
                              "of every batch is drawn keyframes, each drawn from a training clip to the "
                              "demonstration's own sketch and labelled with its grasp point and gripper (pose head).",
                          reads="planner")
    drawn_clips: int = option(8000, "Clips the --planner draws before training (its keyframes each).", advanced=True)
    init_from: str = option("", "Start from this IDM's weights and normalization (folder or shipped name, e.g. "
                                "default) instead of random ones.", reads="idm")

    def check(self) -> None:
        if self.head not in IDM_HEADS:
            raise UsageError(f"unknown --head {self.head!r}; choose {' or '.join(IDM_HEADS)}")
        super().check()
        check_positive(self, ("eval_every", "drawn_clips"))
        if self.planner and self.head != "pose":
            raise UsageError(f"--planner needs --head pose (drawn keyframes are read one at a time; got {self.head})")
        if self.context < 0:
            raise UsageError(f"--context must be 0 or more (got {self.context})")


@dataclass(frozen=True, kw_only=True)
class VideoTrainConfig:
    data: str = option(help="Dataset folder (from `vid2act collect`).", short="-d", reads="path")
    out: str = option(help="Run folder: grounding, sketch, checkpoints, samples, snapshots, the planner.", short="-o")
    recovery: str = option("", "A dataset of recovery episodes (`vid2act collect --recover`) that the sketch and "
                               "the UNet learn from too, from the frame where the expert took over.", reads="path")
    modalities: str = option("rgbd", "rgb or rgbd (plans with metric depth).")
    stride: int = option(4, "Dataset frames between keyframes.")
    keyframes: int = option(4, "Keyframes per chunk, after the current frame.")
    horizon: int = option(0, "Keyframes of an open-loop plan; 0 covers the longest episode.")
    widths: tuple[int, ...] = option((32, 64, 128), "UNet channels per level, comma-separated.")
    attention_levels: int = option(2, "How many of the coarsest levels cross-attend to the instruction's tokens.")
    scale: int = option(2, "Draw chunks at 1/scale of the dataset's resolution; their change from the current "
                           "frame is upsampled (1: full resolution).")
    steps: int = option(2500, "Optimizer steps of the chunk UNet.")
    batch_size: int = option(32, "Clips per step and process.")
    lr: float = option(3e-4, "Peak learning rate (warm-up, then cosine decay).")
    warmup: int = option(200, "Steps of linear learning-rate warm-up.", advanced=True)
    weight_decay: float = option(0.0, "AdamW weight decay.", advanced=True)
    text_dropout: float = option(0.1, "Share of clips trained without their instruction (for classifier-free "
                                      "guidance).", advanced=True)
    start_at_beginning: float = option(0.1, "Share of clips that start at an episode's first frame; the rest "
                                            "anywhere.", advanced=True)
    context_noise: float = option(0.05, "The current frame gets Gaussian noise of std up to this (open loop "
                                        "feeds drawn frames back).", advanced=True)
    snr_cap: float = option(5.0, "The clean change's error weighs min(SNR, cap) + 1 (see the loss).",
                            advanced=True)
    moving_weight: float = option(4.0, "Pixels that move in a clip (and their neighbours) weigh 1 + this in the "
                                       "loss, the rest 1 (0: every pixel alike).", advanced=True)
    noise_bias: float = option(1.5, "Timesteps drawn as T(1 - u^bias), u uniform: 1 uniform, more toward high "
                                    "noise.", advanced=True)
    ema_decay: float = option(0.999, "Decay of the weights' moving average (the weights sampled and saved).",
                              advanced=True)
    val_fraction: float = option(0.05, "Share of the episodes (the last ones) held out for validation.",
                                 advanced=True)
    val_clips: int = option(16, "Validation chunks drawn and scored at each evaluation.", advanced=True)
    eval_every: int = option(500, "Sample chunks, score them and snapshot every N steps.")
    checkpoint_every: int = option(250, "Checkpoint every N steps.")
    sample_steps: int = option(4, "Denoising steps of the validation chunks and of the chunks read back "
                                  "(--reader).", advanced=True)
    sample_guidance: float = option(1.0, "Guidance scale of the validation chunks.", advanced=True)
    grounding_steps: int = option(3000, "Optimizer steps of the grounding net (trained first).")
    grounding_batch_size: int = option(32, "Samples per step of the grounding net.", advanced=True)
    grounding_lr: float = option(1e-3, "Peak learning rate of the grounding net.", advanced=True)
    grounding_width: int = option(32, "Channels of the grounding net (a multiple of 8).", advanced=True)
    sketch_steps: int = option(5000, "Optimizer steps of the sketch net (trained second: where the arm goes at "
                                     "each keyframe).")
    sketch_batch_size: int = option(32, "Samples per step of the sketch net.", advanced=True)
    sketch_lr: float = option(1e-3, "Peak learning rate of the sketch net.", advanced=True)
    sketch_width: int = option(48, "Channels of the sketch net (a multiple of 8).", advanced=True)
    seed: int = option(0, "Seeds initialisation, clips, noise and text dropout.")
    device: str = option("cpu", "cpu, cuda or mps.")
    mixed_precision: str = option("no", "no, bf16 (CPUs with AMX or AVX512-BF16, GPUs) or fp16 (GPUs); weights "
                                        "stay fp32.")
    init_from: str = option("", "Start the UNet from this planner's weights (folder or shipped name, e.g. "
                                "default) instead of random ones.", reads="planner")
    grounding_from: str = option("", "Take this planner's grounding net (folder or shipped name) instead of "
                                     "training one.", reads="planner")
    sketch_from: str = option("", "Take this planner's sketch net (folder or shipped name) instead of training "
                                  "one.", reads="planner")
    reader: str = option("", "An IDM (folder or shipped name, e.g. default: idm-plans-rgbd) that reads the UNet's "
                             "drawings back: each step also draws its clips' chunks as the planner samples them and "
                             "adds the reading's error against the demonstration to the loss. For a run --init-from "
                             "a trained planner.", reads="plan-idm")
    report_to: str = option("none", REPORT_TO_HELP)

    def check(self) -> None:
        for name in ("context_noise", "text_dropout", "noise_bias", "moving_weight"):
            if not math.isfinite(getattr(self, name)):
                raise UsageError(f"--{name.replace('_', '-')} must be a finite number (got {getattr(self, name)})")
        check_positive(self, ("steps", "batch_size", "lr", "grounding_lr", "grounding_steps", "grounding_batch_size",
                              "sketch_steps", "sketch_batch_size", "sketch_lr", "eval_every", "checkpoint_every",
                              "snr_cap"))
        if self.stride < 1 or self.keyframes < 1 or self.horizon < 0:
            raise UsageError("--stride and --keyframes must be at least 1 and --horizon at least 0 (0: cover the "
                             "longest episode)")
        if not 0 < self.val_fraction < 1:
            raise UsageError("the validation fraction must lie between 0 and 1")
        if len(self.widths) < 2 or any(w < 16 or w % 16 for w in self.widths):
            raise UsageError(f"--widths {','.join(map(str, self.widths))}: give two or more levels, each a "
                             f"multiple of 16 (the UNet normalizes channels in 16 groups)")
        if not 1 <= self.attention_levels <= len(self.widths):
            raise UsageError(f"--attention-levels must lie between 1 and the number of --widths ({len(self.widths)})")
        if self.noise_bias < 1:
            raise UsageError(f"--noise-bias must be at least 1 (1: timesteps drawn uniformly; got {self.noise_bias})")
        if self.moving_weight < 0:
            raise UsageError(f"--moving-weight must be 0 or more (got {self.moving_weight})")
        if not 0 <= self.context_noise <= 1 or not 0 <= self.text_dropout < 1:
            raise UsageError("--context-noise must lie in [0, 1] and the text dropout in [0, 1)")
        for name in ("grounding_width", "sketch_width"):
            if getattr(self, name) < 8 or getattr(self, name) % 8:
                raise UsageError(f"--{name.replace('_', '-')} must be a multiple of 8 (got {getattr(self, name)})")


@dataclass(frozen=True, kw_only=True)
class BCTrainConfig(FrameNetConfig):
    hidden: int = option(256, "Features of the image and the instruction before the action head.", advanced=True)
    grounding_from: str = option("", "A planner (folder or shipped name, e.g. default) whose grounding heatmaps BC "
                                "reads beside the frame, as the planner does.", reads="planner")


@dataclass(frozen=True, kw_only=True)
class EvalConfig:
    out: str = option(help="Eval folder: eval_info.json, report.md, report.html, episodes/.", short="-o")
    policy: str = option("plan", "plan (planner + IDM), sketch (the planner's sketch executed without drawing: the "
                                 "planner's ceiling), gt-video (the oracle's video + IDM: the IDM's ceiling), "
                                 "oracle, bc or random.")
    planner: str = option("default", "Planner run folder or shipped name (policies plan, sketch).",
                          reads="planner")
    idm: str = option("default", "IDM run folder or shipped name (policies plan, sketch, gt-video; default: "
                                 "idm-plans-rgbd for plan, idm-rgbd for the others).", reads="idm")
    bc: str = option("default", "Behavior-cloning run folder or shipped name (policy bc).", reads="bc")
    tasks: tuple[str, ...] = option(TASK_FAMILIES, "Comma-separated task families, or all.", every=TASK_FAMILIES)
    split: str = option("test", "test (seen combinations, unseen seeds) or heldout (combinations no training data "
                                "contains).")
    episodes: int = option(10, "Episodes per family.", short="-n")
    first_seed: int = option(0, "Offset into the split's seed range.")
    replan_every: int = option(8, "policy plan: draw a new chunk from the real frame after K actions (closed "
                                  "loop); 0: one whole-task plan (open loop).", short="-k")
    steps: int = option(4, "Denoising steps per chunk.")
    best_of: int = option(BEST_OF, "policy plan: chunks (open loop: plans) drawn at once each time; the one whose "
                             "keyframes the IDM reads closest to the planner's sketch is executed (1: the one drawn).")
    guidance: float = option(1.0, "Classifier-free guidance scale (1: none).")
    workers: int = option(1, "Episodes in parallel processes.", short="-w")
    device: str = option("cpu", "cpu, cuda or mps.")
    precision: str = option("fp32", "The planner's UNet in fp32, or bf16 (for GPUs and CPUs with AMX or "
                                    "AVX512-BF16; on 2 CPU cores it gained little: docs/results.md).")

    def check(self) -> None:
        if self.policy not in POLICIES:
            raise UsageError(f"unknown policy {self.policy!r}; choose {', '.join(POLICIES)}")
        unknown = [t for t in self.tasks if t not in TASK_FAMILIES]
        if unknown:
            raise UsageError(f"unknown task {unknown[0]!r}; choose from {', '.join(TASK_FAMILIES)}")
        if self.split not in ("test", "heldout"):
            raise UsageError(f"--split must be test or heldout (got {self.split!r}); train seeds are for training")
        if self.episodes < 1:
            raise UsageError(f"--episodes must be at least 1 (got {self.episodes})")
        first, last = seed_range(self.split)
        if self.first_seed < 0 or first + self.first_seed + self.episodes - 1 > last:
            raise UsageError(f"--first-seed {self.first_seed} with {self.episodes} episodes needs seeds outside the "
                             f"{self.split} split's range [{first}, {last}]")
        check_range("--best-of", self.best_of, 1, MAX_BEST_OF)
        if self.replan_every < 0:
            raise UsageError(f"--replan-every must be 0 (open loop) or more (got {self.replan_every})")
        check_sampling(self.steps, self.guidance, 1)
        check_range("--workers", self.workers, 1, MAX_WORKERS)
        check_device(self.device)
        if self.precision not in ("fp32", "bf16"):
            raise UsageError(f"unknown --precision {self.precision!r}; choose fp32 or bf16")


def inputs_of(config) -> dict[str, str]:
    """The inputs a config names, as {--option: path}, model names resolved to their folders."""
    found = {}
    for f in fields(config):
        reads, value = f.metadata.get("reads"), getattr(config, f.name)
        if reads and value:
            found["--" + f.name.replace("_", "-")] = value if reads == "path" else str(path_of(value, reads))
    return found
