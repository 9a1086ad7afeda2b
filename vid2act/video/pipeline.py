"""The video planner: ground the instruction, then draw the next few keyframes from the current frame.

- A chunk is `frames` keyframes, `stride` dataset frames apart, after the current frame (RGB or RGB-D).
  Closed loop, a policy executes part of a chunk and draws again from the real frame it reached; open loop,
  `rollout` rolls the chunk model forward on its own keyframes into a whole-task plan of `horizon`
  keyframes (UniPi's plan, in the same plan format).
- Grounding first (`grounding.py`): a small net reads the frame and the instruction and says where the named
  object is and where it goes; those two points enter the UNet as two Gaussian heatmaps beside the frame.
  The UNet then only has to draw the arm going to highlighted places, which is what a diffusion UNet learns
  quickly; binding colour words to objects, which it had not learned in two CPU-hours, is the grounding
  net's one job (`docs/history.md`).
- The plan is drawn at 1/`scale` of the scene's resolution (24x32 for 48x64 scenes), and what it draws is
  the change from the current frame, upsampled and added to the full-resolution frame, so what does not
  move stays sharp (most pixels do not change).
- The sketch next (`sketch.py`): a second small net reads the frame, the two heatmaps and the instruction and
  marks where the grasp point is at each keyframe (and its shadow on the table, which fixes its height) and
  whether the gripper is closed; the UNet reads those marks as heatmaps and planes and draws the arm there.
- The instruction's MiniLM tokens are cross-attended at the coarsest `attention_levels` levels and its
  mean embedding conditions every block through the time embedding. Classifier-free guidance drops the
  prompt (all-zero embeddings); the frame and the heatmaps are always given.
- v-prediction on a cosine schedule with `trailing` timesteps, so 2-4 DDIM steps start from pure noise.
Saved in the diffusers layout (model_index.json, unet/, scheduler/), plus planner.json (the plan's shape,
normalization, provenance) and grounding/ (config.json + model.safetensors)."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from diffusers import DDIMScheduler, DiffusionPipeline, DPMSolverMultistepScheduler, UNet2DConditionModel
from diffusers.utils import BaseOutput

from vid2act.configs import check_sampling
from vid2act.errors import UsageError, Vid2ActError
from vid2act.shipped import resolve
from vid2act.video import text
from vid2act.video.sketch import SKETCH_FOLDER, SKETCH_TYPE, conditions, read as read_sketch
from vid2act.video.grounding import (GROUNDING_FOLDER, HEATMAP_SIGMA, PlaceNet, heatmaps, load_grounding, locate,
                                     save_grounding)

PLANNER_FORMAT = "vid2act.video/4"
OLD_FORMATS = {"vid2act.video/1": "a whole-episode planner of vid2act 0.1, which drew no grounding",
               "vid2act.video/2": "a chunk planner that drew without a sketch of where the arm goes",
               "vid2act.video/3": "a development format of today's planner (its keyframes named frames)"}
PLANNER_FILE = "planner.json"  # beside model_index.json: what the plan is (keyframes, stride, modalities, ...)
SAMPLERS = {"ddim": DDIMScheduler, "dpm++": DPMSolverMultistepScheduler}


@dataclass(frozen=True)
class PlannerShape:
    keyframes: int = 4  # per chunk, after the current frame
    stride: int = 4  # dataset frames between keyframes
    modalities: str = "rgbd"
    image_size: tuple[int, int] = (48, 64)  # the frames' size, as the scenes have it
    scale: int = 2  # the chunk is drawn at image_size / scale, and its change from the frame upsampled
    horizon: int = 19  # keyframes of a whole-task (open-loop) plan

    @property
    def channels(self) -> int:
        return 4 if self.modalities == "rgbd" else 3

    @property
    def plan_size(self) -> tuple[int, int]:
        return self.image_size[0] // self.scale, self.image_size[1] // self.scale

    def check(self) -> None:
        if self.modalities not in ("rgb", "rgbd"):
            raise UsageError(f"unknown modalities {self.modalities!r}; choose rgb or rgbd")
        if self.keyframes < 1 or self.stride < 1 or self.horizon < 1:
            raise UsageError("the planner needs at least one keyframe per chunk and in a plan, and a stride of at least 1")
        if self.scale < 1:
            raise UsageError("--scale must be at least 1")
        if any(n % self.scale for n in self.image_size):
            raise UsageError(f"image size {self.image_size} must be a multiple of --scale {self.scale}")

    def check_levels(self, levels: int) -> None:
        """A UNet of `levels` levels halves the plan levels - 1 times."""
        halvings = 2 ** (levels - 1)
        h, w = self.plan_size
        if h % halvings or w % halvings:
            raise UsageError(f"the UNet draws {h}x{w} and {levels} levels (--widths) halve that {levels - 1} times: "
                             f"both sides must be multiples of {halvings}; give fewer levels or a smaller --scale")

    @classmethod
    def from_planner(cls, planner: dict) -> "PlannerShape":
        return cls(planner["keyframes"], planner["stride"], planner["modalities"], tuple(planner["image_size"]),
                   planner["scale"], planner["horizon"])


def condition_channels(shape: PlannerShape) -> int:
    """What the UNet reads besides the frames: the grounding's two heatmaps and the sketch's (`sketch.py`)."""
    return 2 + 3 * shape.keyframes


def make_unet(shape: PlannerShape, widths=(32, 64, 128), attention_levels: int = 2) -> UNet2DConditionModel:
    """The UNet for `shape`: in, the noisy change of each keyframe, the current frame, the grounding's two
    heatmaps and the sketch; out, v for each keyframe's change. Cross-attends to the prompt's tokens at its
    coarsest levels."""
    c, plain = shape.channels, len(widths) - attention_levels
    return UNet2DConditionModel(
        sample_size=shape.plan_size, in_channels=(shape.keyframes + 1) * c + condition_channels(shape),
        out_channels=shape.keyframes * c,
        down_block_types=("DownBlock2D",) * plain + ("CrossAttnDownBlock2D",) * attention_levels,
        up_block_types=("CrossAttnUpBlock2D",) * attention_levels + ("UpBlock2D",) * plain,
        mid_block_type="UNetMidBlock2DCrossAttn", block_out_channels=tuple(widths), layers_per_block=1,
        norm_num_groups=16, cross_attention_dim=text.EMBEDDING_DIM,
        attention_head_dim=4,  # in the 2-D UNet this is the number of heads
        class_embed_type="projection", projection_class_embeddings_input_dim=text.EMBEDDING_DIM,
        resnet_time_scale_shift="scale_shift")


def make_scheduler(sampler: str = "ddim", config=None):
    """Training and sampling share one noise schedule: cosine, v-prediction, `trailing` spacing so that a
    few-step sampler starts from pure noise. `config` is a saved scheduler's."""
    if sampler not in SAMPLERS:
        raise UsageError(f"unknown sampler {sampler!r}; choose {' or '.join(SAMPLERS)}")
    if config is not None:
        return SAMPLERS[sampler].from_config(config)
    common = dict(num_train_timesteps=1000, beta_schedule="squaredcos_cap_v2", prediction_type="v_prediction",
                  timestep_spacing="trailing")
    if sampler == "ddim":
        return DDIMScheduler(**common, clip_sample=False, set_alpha_to_one=False)
    return DPMSolverMultistepScheduler(**common, algorithm_type="dpmsolver++", solver_order=2)


# --- pixels <-> model space ------------------------------------------------------------------------------
def to_model(rgb: torch.Tensor, depth: torch.Tensor | None, depth_mean: float, depth_std: float) -> torch.Tensor:
    """uint8 rgb [..., H, W, 3] (+ depth [..., H, W] metres) -> float [..., C, H, W], about unit scale."""
    x = rgb.float() / 127.5 - 1.0
    if depth is not None:
        x = torch.cat([x, ((depth.float() - depth_mean) / depth_std).unsqueeze(-1)], dim=-1)
    return x.movedim(-1, -3)


def to_pixels(x: torch.Tensor, depth_mean: float, depth_std: float,
              quantize: bool = True) -> tuple[torch.Tensor, torch.Tensor | None]:
    """`to_model`'s inverse: float [..., C, H, W] -> uint8 rgb [..., H, W, 3] and depth metres [..., H, W] (None
    without a depth channel). `quantize=False` keeps rgb float and unrounded, so gradients pass through it."""
    rgb = ((x[..., :3, :, :].clamp(-1, 1) + 1) * 127.5).movedim(-3, -1)
    if quantize:
        rgb = rgb.round().to(torch.uint8)
    return rgb, x[..., 3, :, :] * depth_std + depth_mean if x.shape[-3] == 4 else None


def shrink(rgb: torch.Tensor, depth: torch.Tensor | None, scale: int):
    """uint8 rgb [..., H, W, 3] and depth [..., H, W] -> both at 1/scale by area averaging, rgb rounded back
    to uint8; training and sampling shrink frames the same way."""
    if scale == 1:
        return rgb, depth
    lead, (h, w) = rgb.shape[:-3], rgb.shape[-3:-1]
    x = F.avg_pool2d(rgb.reshape(-1, h, w, 3).permute(0, 3, 1, 2).float(), scale)
    small = x.round().to(torch.uint8).permute(0, 2, 3, 1).reshape(*lead, h // scale, w // scale, 3)
    if depth is not None:
        d = F.avg_pool2d(depth.reshape(-1, 1, h, w).float(), scale)
        depth = d.reshape(*lead, h // scale, w // scale).to(depth.dtype)
    return small, depth


def enlarge(change: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """[B, K, C, h, w] -> [B, K, C, H, W], bilinear: the drawn change, at the frame's size."""
    b, k, c, h, w = change.shape
    if (h, w) == tuple(size):
        return change
    return F.interpolate(change.reshape(b, k * c, h, w), size=tuple(size), mode="bilinear",
                         align_corners=False).reshape(b, k, c, *size)


def batch_of_one(image: np.ndarray, depth: np.ndarray | None) -> tuple[torch.Tensor, torch.Tensor | None]:
    return torch.from_numpy(image)[None], torch.from_numpy(depth)[None] if depth is not None else None


def null_prompt(batch: int, device=None) -> dict[str, torch.Tensor]:
    return {"tokens": torch.zeros(batch, text.MAX_TOKENS, text.EMBEDDING_DIM, device=device),
            "mask": torch.ones(batch, text.MAX_TOKENS, dtype=torch.bool, device=device),
            "pooled": torch.zeros(batch, text.EMBEDDING_DIM, device=device)}


def predict(unet, noisy_change: torch.Tensor, current: torch.Tensor, heat: torch.Tensor, timestep,
            prompt: dict) -> torch.Tensor:
    """The UNet's v [B, K, C, h, w] for the noisy change [B, K, C, h, w] from the current frame
    [B, C, h, w], given the conditions [B, 2 + 3K, h, w] (grounding heatmaps, then the sketch) and the
    prompt's embeddings."""
    b, k, c, h, w = noisy_change.shape
    x = torch.cat([noisy_change.reshape(b, k * c, h, w), current, heat.to(current.dtype)], dim=1)
    out = unet(x, timestep, encoder_hidden_states=prompt["tokens"], class_labels=prompt["pooled"],
               encoder_attention_mask=prompt["mask"]).sample
    return out.reshape(b, k, c, h, w)


@dataclass
class PlanOutput(BaseOutput):
    """rgb uint8 [N, K+1, H, W, 3] and depth float32 metres [N, K+1, H, W] (None for an RGB planner);
    frame 0 is the frame the plan starts from. points: the grounding [2, 2] (object, target; column, row on
    the plan's grid) the plan was drawn for; marks [N, K, 2, 2] and closed [N, K]: the sketch each keyframe
    was drawn to (grasp point and its shadow on the plan's grid, gripper closed)."""
    rgb: np.ndarray
    depth: np.ndarray | None
    points: np.ndarray
    marks: np.ndarray
    closed: np.ndarray


class VideoPlannerPipeline(DiffusionPipeline):
    """Current frame + instruction -> the next keyframes (`__call__`), or a whole-task plan (`rollout`).

        pipe = VideoPlannerPipeline.from_pretrained("models/planner-rgbd")
        chunk = pipe(image, "push the red block onto the blue pad", depth=depth, generator=torch.Generator().manual_seed(0))
    """

    def __init__(self, unet: UNet2DConditionModel, scheduler, planner: dict | None = None,
                 grounding: PlaceNet | None = None, sketcher: PlaceNet | None = None):
        super().__init__()
        if planner is None or grounding is None or sketcher is None:
            raise Vid2ActError("the planner settings (planner.json), its grounding or its sketch model are missing")
        self.register_modules(unet=unet, scheduler=scheduler)
        self.planner = planner  # the plan's shape, normalization and provenance; planner.json on disk
        # not diffusers modules: saved and loaded beside them, in grounding/ and sketch/
        self.grounding, self.sketcher = grounding, sketcher

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, **kwargs):
        folder = Path(pretrained_model_name_or_path)
        if not folder.is_dir():
            raise Vid2ActError(f"{folder} is {'a file' if folder.exists() else 'missing'}; a planner is the folder "
                               "`vid2act train video` writes (model_index.json, unet/, planner.json ...)")
        kwargs.setdefault("planner", read_planner_settings(folder / PLANNER_FILE))
        kwargs.setdefault("grounding", load_grounding(folder / GROUNDING_FOLDER)[0])
        kwargs.setdefault("sketcher", load_sketch(folder))
        return super().from_pretrained(pretrained_model_name_or_path, **kwargs)

    def save_pretrained(self, save_directory, **kwargs):
        from vid2act.outputs import write_json
        super().save_pretrained(save_directory, **kwargs)
        save_grounding(Path(save_directory) / GROUNDING_FOLDER, self.grounding, self.planner.get("grounding", {}))
        save_grounding(Path(save_directory) / SKETCH_FOLDER, self.sketcher, self.planner.get("sketch", {}),
                       kind=SKETCH_TYPE)
        write_json(Path(save_directory) / PLANNER_FILE, self.planner)

    def to(self, *args, **kwargs):
        super().to(*args, **kwargs)
        device = kwargs.get("device", args[0] if args and not isinstance(args[0], torch.dtype) else None)
        if device is not None:
            self.grounding.to(device)
            self.sketcher.to(device)
        return self

    @property
    def shape(self) -> PlannerShape:
        return PlannerShape.from_planner(self.planner)

    # --- the steps of a plan ------------------------------------------------------------------------
    def check_inputs(self, image, depth, steps: int, guidance: float, samples: int):
        """The frame as uint8 [H, W, 3] and depth as float32 [H, W] (None for an RGB planner), checked."""
        shape = self.shape
        check_sampling(steps, guidance, samples)
        image = np.asarray(image)
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
            raise Vid2ActError(f"the start image must be uint8 RGB [H, W, 3]; got {image.dtype} {list(image.shape)}")
        if image.shape[:2] != shape.image_size:
            raise Vid2ActError(f"the start image is {image.shape[0]}x{image.shape[1]}; this planner draws "
                               f"{shape.image_size[0]}x{shape.image_size[1]} (pass --resize to resize it)")
        if shape.modalities == "rgb":
            return image, None
        if depth is None:
            raise Vid2ActError("this planner is RGB-D and needs the start depth (--depth, or a --scene folder "
                               "with start_depth.npy)")
        depth = np.asarray(depth, dtype=np.float32)
        if depth.shape != shape.image_size:
            raise Vid2ActError(f"the start depth is {list(depth.shape)}; this planner needs "
                               f"[{shape.image_size[0]}, {shape.image_size[1]}]")
        if not np.isfinite(depth).all():
            bad = np.argwhere(~np.isfinite(depth))[0]
            raise Vid2ActError(f"the start depth holds NaN or infinite values (first at row {bad[0]}, column {bad[1]})")
        return image, depth

    def encode_prompt(self, prompt: str, samples: int, guided: bool) -> dict[str, torch.Tensor]:
        """The prompt's embeddings for `samples` plans, the unconditional ones first when guided."""
        device, dtype = self.unet.device, self.unet.dtype
        cond = {k: v.to(device).expand(samples, *v.shape[1:]) for k, v in text.encode([prompt]).items()}
        if guided:
            uncond = null_prompt(samples, device)
            cond = {k: torch.cat([uncond[k], cond[k]]) for k in cond}
        return {k: v.to(dtype) if v.is_floating_point() else v for k, v in cond.items()}

    def frame_input(self, rgb: torch.Tensor, depth: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        """Frames (uint8 rgb [N, H, W, 3], depth metres [N, H, W] or None) in model space at full size [N, C, H,
        W] and at the plan's size [N, C, h, w]."""
        mean, std = self.planner["depth_mean"], self.planner["depth_std"]
        return to_model(rgb, depth, mean, std), to_model(*shrink(rgb, depth, self.shape.scale), mean, std)

    @torch.no_grad()
    def ground(self, image: np.ndarray, depth: np.ndarray | None, prompt: str) -> np.ndarray:
        """Where the instruction's object is and where it goes: [2, 2] (column, row) on the plan's grid."""
        _, small = self.frame_input(*batch_of_one(*self.check_inputs(image, depth, 1, 1.0, 1)))
        embedded = text.encode([prompt])
        device = next(self.grounding.parameters()).device
        logits = self.grounding(small.to(device), embedded["tokens"].to(device), embedded["mask"].to(device))
        return locate(logits)[0].cpu().numpy()

    @torch.no_grad()
    def sketch(self, small: torch.Tensor, prompt: str, heat: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Where the grasp point is at each keyframe and whether the gripper is closed there, from the frame at
        the plan's size [1, C, h, w] and the grounding's heatmaps [1, 2, h, w]: marks [1, K, 2, 2] (grasp point,
        shadow; column, row) and closed [1, K]."""
        embedded = text.encode([prompt])
        device = next(self.sketcher.parameters()).device
        logits, flags = self.sketcher(small.to(device), embedded["tokens"].to(device), embedded["mask"].to(device),
                                      heat.to(device))
        marks, closed = read_sketch(logits, flags, self.shape.keyframes)
        return marks.cpu(), closed.cpu()

    def sketch_frame(self, image: np.ndarray, depth: np.ndarray | None, prompt: str,
                     points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The sketch of the chunk that would be drawn from this frame, without drawing it: marks [K, 2, 2] and
        closed [K] (what `eval --policy sketch` executes)."""
        _, small = self.frame_input(*batch_of_one(*self.check_inputs(image, depth, 1, 1.0, 1)))
        marks, closed = self.sketch(small, prompt, heatmaps(torch.as_tensor(points)[None], self.shape.plan_size,
                                                            HEATMAP_SIGMA))
        return marks[0].numpy(), closed[0].numpy()

    def prepare_latents(self, samples: int, generator: torch.Generator | None) -> torch.Tensor:
        shape = self.shape
        h, w = shape.plan_size
        noise = torch.randn((samples, shape.keyframes, shape.channels, h, w), generator=generator)
        return noise.to(self.unet.device) * self.scheduler.init_noise_sigma

    def denoise(self, latents: torch.Tensor, current: torch.Tensor, heat: torch.Tensor, prompt: dict,
                steps: int, guidance: float, generator: torch.Generator | None) -> torch.Tensor:
        """The explicit sampling loop: the clean change [N, K, C, h, w]."""
        dtype = self.unet.dtype
        guided = guidance != 1.0
        current, heat = current.to(self.unet.device, dtype), heat.to(self.unet.device, dtype)
        if guided:
            current, heat = torch.cat([current, current]), torch.cat([heat, heat])
        self.scheduler.set_timesteps(steps, device=self.unet.device)
        for t in self.scheduler.timesteps:
            model_in = self.scheduler.scale_model_input(latents, t).to(dtype)
            if guided:
                unconditional, conditional = predict(self.unet, torch.cat([model_in, model_in]), current, heat, t,
                                                     prompt).float().chunk(2)
                estimate = unconditional + guidance * (conditional - unconditional)
            else:
                estimate = predict(self.unet, model_in, current, heat, t, prompt).float()
            # the scheduler works on flat [N, K*C, h, w] tensors
            step = self.scheduler.step(estimate.flatten(1, 2), t, latents.flatten(1, 2), generator=generator)
            latents = step.prev_sample.view_as(latents)
        return latents

    def draw(self, change: torch.Tensor, full: torch.Tensor) -> torch.Tensor:
        """The keyframes in model space [N, K, C, H, W]: the drawn change [N, K, C, h, w], enlarged and added to
        the full-size frames [N, C, H, W], so that what does not move stays sharp."""
        return full[:, None] + enlarge(change.float().cpu(), self.shape.image_size)

    def decode(self, keyframes: torch.Tensor, image: np.ndarray, depth: np.ndarray | None):
        """The given frame, then the drawn keyframes -> rgb uint8 [N, K+1, H, W, 3] and depth [N, K+1, H, W]."""
        rgb, plan_depth = to_pixels(keyframes, self.planner["depth_mean"], self.planner["depth_std"])
        n = len(keyframes)
        rgb = np.concatenate([np.broadcast_to(image, (n, 1, *image.shape)), rgb.numpy()], axis=1)
        if depth is None:
            return rgb, None
        return rgb, np.concatenate([np.broadcast_to(depth, (n, 1, *depth.shape)), plan_depth.numpy()], axis=1)

    @torch.no_grad()
    def __call__(self, image: np.ndarray, prompt: str, depth: np.ndarray | None = None,
                 num_inference_steps: int = 4, guidance_scale: float = 1.0,
                 generator: torch.Generator | None = None, num_videos_per_prompt: int = 1,
                 points: np.ndarray | None = None) -> PlanOutput:
        """One chunk: the next `frames` keyframes after `image`. `points` (from `ground`) are the places the
        chunk heads for; by default they are read off this frame. The sketch of the chunk is read off this
        frame, and the UNet draws the keyframes to it."""
        image, depth = self.check_inputs(image, depth, num_inference_steps, guidance_scale, num_videos_per_prompt)
        if points is None:
            points = self.ground(image, depth, prompt)
        n = num_videos_per_prompt
        full, small = self.frame_input(*batch_of_one(image, depth))
        heat = heatmaps(torch.as_tensor(points)[None], self.shape.plan_size, HEATMAP_SIGMA)
        marks, closed = self.sketch(small, prompt, heat)
        condition = torch.cat([heat, conditions(marks, closed, self.shape.plan_size)], dim=1)
        prompt_embeds = self.encode_prompt(prompt, n, guidance_scale != 1.0)
        latents = self.prepare_latents(n, generator)
        change = self.denoise(latents, small.expand(n, -1, -1, -1), condition.expand(n, -1, -1, -1), prompt_embeds,
                              num_inference_steps, guidance_scale, generator)
        rgb, plan_depth = self.decode(self.draw(change, full), image, depth)
        return PlanOutput(rgb=rgb, depth=plan_depth, points=np.asarray(points),
                          marks=marks.expand(n, -1, -1, -1).numpy(), closed=closed.expand(n, -1).numpy())

    @torch.no_grad()
    def rollout(self, image: np.ndarray, prompt: str, depth: np.ndarray | None = None,
                num_inference_steps: int = 4, guidance_scale: float = 1.0,
                generator: torch.Generator | None = None, num_videos_per_prompt: int = 1,
                points: np.ndarray | None = None) -> PlanOutput:
        """A whole-task plan of `horizon` keyframes (open loop, UniPi's use): each chunk is drawn from the
        last keyframe of the one before, the grounding read once, off the first frame."""
        image, depth = self.check_inputs(image, depth, num_inference_steps, guidance_scale, num_videos_per_prompt)
        if points is None:
            points = self.ground(image, depth, prompt)
        horizon = self.shape.horizon
        plans = []
        for _ in range(num_videos_per_prompt):
            rgb, plan_depth = [image[None]], [depth[None]] if depth is not None else None
            marks, closed = [], []
            while sum(len(r) for r in rgb) - 1 < horizon:
                frame = rgb[-1][-1]
                frame_depth = plan_depth[-1][-1] if plan_depth is not None else None
                chunk = self(frame, prompt, frame_depth, num_inference_steps, guidance_scale, generator, 1, points)
                rgb.append(chunk.rgb[0, 1:])
                marks.append(chunk.marks[0])
                closed.append(chunk.closed[0])
                if plan_depth is not None:
                    plan_depth.append(chunk.depth[0, 1:])
            plans.append((np.concatenate(rgb)[: horizon + 1],
                          np.concatenate(plan_depth)[: horizon + 1] if plan_depth is not None else None,
                          np.concatenate(marks)[:horizon], np.concatenate(closed)[:horizon]))
        return PlanOutput(rgb=np.stack([p[0] for p in plans]),
                          depth=np.stack([p[1] for p in plans]) if depth is not None else None,
                          points=np.asarray(points), marks=np.stack([p[2] for p in plans]),
                          closed=np.stack([p[3] for p in plans]))


# --- files -------------------------------------------------------------------------------------------------
PRECISIONS = {"fp32": torch.float32, "bf16": torch.bfloat16}


def load_planner(reference: str, device: str = "cpu", sampler: str | None = None,
                 precision: str = "fp32") -> VideoPlannerPipeline:
    """A planner folder (diffusers layout) or shipped name -> the pipeline on `device`. `precision` bf16 runs
    the UNet in bfloat16 (GPUs, CPUs with AMX or AVX512-BF16; this small UNet gains little on 2 cores); the
    grounding and sketch nets and the scheduler's arithmetic stay fp32."""
    if precision not in PRECISIONS:
        raise UsageError(f"unknown --precision {precision!r}; choose {' or '.join(PRECISIONS)}")

    from vid2act.formats import check_action_space
    folder = resolve(reference, "planner")
    if not (folder / "model_index.json").exists():
        hint = " (that is an IDM; give it to --idm)" if (folder / "config.json").exists() else ""
        raise Vid2ActError(f"{folder} has no model_index.json; is it a planner folder (from `vid2act train video`)?{hint}")
    planner_path = folder / PLANNER_FILE
    if not planner_path.exists():
        raise Vid2ActError(f"{folder} is incomplete: {PLANNER_FILE} is missing")
    planner = read_planner_settings(planner_path)
    check_action_space(planner.get("action_space", {}), planner_path)
    for part in ("unet/config.json", "scheduler/scheduler_config.json"):
        if not (folder / part).exists():
            raise Vid2ActError(f"{folder} is incomplete: {part} is missing")
    weights = sorted((folder / "unet").glob("*.safetensors"))
    if not weights:
        others = [p.name for p in (folder / "unet").iterdir() if p.suffix in (".bin", ".pt", ".pth", ".ckpt")]
        hint = f" ({', '.join(others)} found: vid2act loads only safetensors, never pickles)" if others else ""
        raise Vid2ActError(f"{folder}/unet has no safetensors weights{hint}")
    grounding, _ = load_grounding(folder / GROUNDING_FOLDER)
    sketcher = load_sketch(folder)
    try:
        PlannerShape.from_planner(planner).check()
        unet = UNet2DConditionModel.from_pretrained(folder / "unet", use_safetensors=True,
                                                    torch_dtype=PRECISIONS[precision])
        scheduler_config = json.loads((folder / "scheduler" / "scheduler_config.json").read_text())
        scheduler = make_scheduler(sampler or _sampler_name(scheduler_config), scheduler_config)
    except (OSError, ValueError, RuntimeError, KeyError, TypeError) as e:
        first_line = str(e).strip().splitlines()[0] if str(e).strip() else e.__class__.__name__
        raise Vid2ActError(f"{folder} could not be loaded ({first_line})") from None
    pipe = VideoPlannerPipeline(unet=unet.eval(), scheduler=scheduler, planner=planner, grounding=grounding,
                                sketcher=sketcher)
    pipe.set_progress_bar_config(disable=True)
    return pipe.to(device)


def read_planner_settings(path: Path) -> dict:
    """planner.json, in today's format; older ones are refused with what they are."""
    from vid2act.formats import load_json
    planner = load_json(path, "planner settings")
    found = planner.get("format")
    if found in OLD_FORMATS:
        raise Vid2ActError(f"{path.parent} is of format {found!r}, {OLD_FORMATS[found]}; this vid2act reads "
                           f"{PLANNER_FORMAT!r}: train a new one with `vid2act train video`")
    if found != PLANNER_FORMAT:
        raise Vid2ActError(f"{path} is of format {found!r}; this vid2act reads {PLANNER_FORMAT!r}")
    return planner


def load_sketch(folder: Path) -> PlaceNet:
    return load_grounding(Path(folder) / SKETCH_FOLDER, kind=SKETCH_TYPE, what="sketch model")[0]


def _sampler_name(scheduler_config: dict) -> str:
    for name, cls in SAMPLERS.items():
        if scheduler_config.get("_class_name") == cls.__name__:
            return name
    raise Vid2ActError(f"unknown scheduler {scheduler_config.get('_class_name')!r}; vid2act samples with "
                       f"{', '.join(c.__name__ for c in SAMPLERS.values())}")


def save_planner(folder: Path, unet: UNet2DConditionModel, planner: dict, scheduler, grounding: PlaceNet,
                 sketcher: PlaceNet, half: bool = False) -> None:
    """The diffusers layout into `folder` (which the caller creates atomically). `half` stores fp16 weights."""
    import copy
    unet = copy.deepcopy(unet).to("cpu")
    if half:
        unet = unet.half()
    pipe = VideoPlannerPipeline(unet=unet, scheduler=scheduler, planner=planner, grounding=grounding,
                                sketcher=sketcher)
    pipe.save_pretrained(folder, safe_serialization=True)
