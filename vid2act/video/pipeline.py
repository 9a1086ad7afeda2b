"""The video planner: a diffusers `UNet2DConditionModel` and the `DiffusionPipeline` that samples a plan with it.

- A plan is the start frame plus `frames` keyframes, `stride` dataset frames apart (so it covers
  frames x stride x frame_interval control steps), RGB or RGB-D.
- Two backbones (`backbone` in planner.json):
  - `stacked` (the default): the whole plan in the channels of one image, the start frame concatenated
    (UniPi's conditioning) once or (`tile_start`, the default for new planners) beside every keyframe: once,
    the start frame is 4 of 80 input channels, and the net was slow to find in it where the prompt's objects
    are (README, "Measured"); the top level must be wider than the plan's channels. Optionally (`fold` 2)
    folded 2x2 into channels (space to depth), which then is too deep for its top level (below).
  - `frames`: one UNet, shared by every keyframe, draws keyframe k from the noisy keyframe, the start frame
    (concatenated) and k (a sinusoidal embedding added to the time embedding); a plan is one batch of K
    images. Every keyframe starts from the same noise, so a deterministic sampler keeps them consistent;
    the IDM reads each keyframe on its own, so nothing more has to tie them together. It costs K images
    per denoising step: about 6x the stacked net's sampling time (README, "Measured").
- With `scale` 2 the plan is drawn at half the scene's resolution (24x32 for 48x64 scenes: 4x fewer
  pixels to learn and to sample) and its change from the start frame is upsampled bilinearly and added to
  the full-resolution start frame, so what does not move stays sharp. Measured before choosing: the IDM
  reads oracle keyframes shrunk to 24x32 and enlarged back as well as the originals (24/24 vs 22/24).
- The diffusion runs on the plan's change from the start frame: most pixels do not change, so the signal
  is mostly zero and the net spends itself on the arm and the moved object.
- It predicts v (`prediction_type="v_prediction"`); `epsilon` and `sample` (the clean change) train too.
  Measured with the folded 128-wide stacked net: predicting the clean change, after 1,500 steps its error at
  t=10 was 15x that of copying the noisy input (the plans were the blurred average); predicting v, after
  1,000 steps it explained a quarter of the noise at t=50 and the plans stayed noise.
- The instruction enters twice: its MiniLM token embeddings by cross-attention at the coarsest
  `attention_levels` levels (they tell "red block onto blue pad" from "blue block onto red pad", which the
  mean embedding barely does: cosine 0.997), and its mean embedding through the time embedding of every block.
- Classifier-free guidance: the unconditional prompt is all-zero embeddings (dropped in training).
Saved in the diffusers layout: model_index.json (with the planner's settings), unet/, scheduler/."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from diffusers import DDIMScheduler, DiffusionPipeline, DPMSolverMultistepScheduler, UNet2DConditionModel
from diffusers.utils import BaseOutput

from vid2act.errors import UsageError, Vid2ActError
from vid2act.video import text

PLANNER_FORMAT = "vid2act.video/1"
PLANNER_FILE = "planner.json"  # beside model_index.json: what the plan is (frames, stride, modalities, ...)
DEFAULT_PLANNER = "planner-rgbd"  # what `--model default` names, under models/
SAMPLERS = {"ddim": DDIMScheduler, "dpm++": DPMSolverMultistepScheduler}
BACKBONES = ("frames", "stacked")
FRAME_EMBEDDING_DIM = 64  # the keyframe number's sinusoidal embedding (frames backbone)


@dataclass(frozen=True)
class PlannerShape:
    frames: int = 19  # keyframes after the start frame
    stride: int = 4  # dataset frames between keyframes
    modalities: str = "rgbd"
    image_size: tuple[int, int] = (48, 64)  # the start image's and the plan's, as the scenes have it
    fold: int = 1  # space-to-depth factor: the UNet runs at plan_size / fold
    scale: int = 1  # the plan is drawn at image_size / scale, and its change from the start frame upsampled
    backbone: str = "stacked"  # older planners, without the field, are stacked
    tile_start: bool = False  # stacked: the start frame beside every keyframe (UniPi's tiling), not once

    @property
    def channels(self) -> int:
        return 4 if self.modalities == "rgbd" else 3

    @property
    def plan_size(self) -> tuple[int, int]:
        return self.image_size[0] // self.scale, self.image_size[1] // self.scale

    def check(self) -> None:
        if self.backbone not in BACKBONES:
            raise UsageError(f"unknown backbone {self.backbone!r}; choose {' or '.join(BACKBONES)}")
        if self.modalities not in ("rgb", "rgbd"):
            raise UsageError(f"unknown modalities {self.modalities!r}; choose rgb or rgbd")
        if self.frames < 1 or self.stride < 1:
            raise UsageError("the planner needs at least one keyframe and a stride of at least 1")
        if self.scale < 1 or self.fold < 1:
            raise UsageError("--scale and --fold must be at least 1")
        if any(n % (self.scale * self.fold) for n in self.image_size):
            raise UsageError(f"image size {self.image_size} must be a multiple of scale x fold "
                             f"= {self.scale * self.fold}")

    def check_levels(self, levels: int) -> None:
        """A UNet of `levels` levels halves the plan levels - 1 times."""
        halvings = 2 ** (levels - 1)
        h, w = self.plan_size[0] // self.fold, self.plan_size[1] // self.fold
        if h % halvings or w % halvings:
            raise UsageError(f"the UNet draws {h}x{w} and {levels} levels (--widths) halve that {levels - 1} times: "
                             f"both sides must be multiples of {halvings}; give fewer levels or a smaller "
                             f"--scale or --fold")


def make_unet(shape: PlannerShape, widths=(96, 128, 192), attention_levels: int = 1) -> UNet2DConditionModel:
    """The UNet for `shape`, cross-attending to the prompt's tokens at its coarsest `attention_levels` levels."""
    c, plain = shape.channels * shape.fold ** 2, len(widths) - attention_levels
    if shape.backbone == "frames":
        in_channels, out_channels, class_dim = 2 * c, c, text.EMBEDDING_DIM + FRAME_EMBEDDING_DIM
    else:
        starts = shape.frames if shape.tile_start else 1
        in_channels, out_channels, class_dim = (shape.frames + starts) * c, shape.frames * c, text.EMBEDDING_DIM
    return UNet2DConditionModel(
        sample_size=(shape.plan_size[0] // shape.fold, shape.plan_size[1] // shape.fold),
        in_channels=in_channels, out_channels=out_channels,
        down_block_types=("DownBlock2D",) * plain + ("CrossAttnDownBlock2D",) * attention_levels,
        up_block_types=("CrossAttnUpBlock2D",) * attention_levels + ("UpBlock2D",) * plain,
        mid_block_type="UNetMidBlock2DCrossAttn", block_out_channels=tuple(widths), layers_per_block=1,
        norm_num_groups=16, cross_attention_dim=text.EMBEDDING_DIM,
        attention_head_dim=4,  # in the 2-D UNet this is the number of heads
        class_embed_type="projection", projection_class_embeddings_input_dim=class_dim,
        resnet_time_scale_shift="scale_shift")


def make_scheduler(sampler: str = "ddim", config=None, prediction_type: str = "v_prediction"):
    """Training and sampling share one noise schedule: cosine, `trailing` spacing so a few-step sampler
    starts from pure noise. `config` (a saved scheduler's) takes precedence over `prediction_type`."""
    if sampler not in SAMPLERS:
        raise UsageError(f"unknown sampler {sampler!r}; choose {' or '.join(SAMPLERS)}")
    if config is not None:
        return SAMPLERS[sampler].from_config(config)
    common = dict(num_train_timesteps=1000, beta_schedule="squaredcos_cap_v2", prediction_type=prediction_type,
                  timestep_spacing="trailing")
    if sampler == "ddim":
        return DDIMScheduler(**common, clip_sample=False, set_alpha_to_one=False)
    return DPMSolverMultistepScheduler(**common, algorithm_type="dpmsolver++", solver_order=2)


# --- pixels <-> model space ------------------------------------------------------------------------------
def to_model(rgb: torch.Tensor, depth: torch.Tensor | None, depth_mean: float, depth_std: float) -> torch.Tensor:
    """uint8 rgb [B, T, H, W, 3] (+ depth [B, T, H, W] metres) -> float [B, T, C, H, W], about unit scale."""
    x = rgb.float() / 127.5 - 1.0
    if depth is not None:
        x = torch.cat([x, ((depth.float() - depth_mean) / depth_std).unsqueeze(-1)], dim=-1)
    return x.permute(0, 1, 4, 2, 3)


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
    """[B, T, C, h, w] -> [B, T, C, H, W], bilinear: the drawn change, at the start image's size."""
    b, t, c, h, w = change.shape
    if (h, w) == tuple(size):
        return change
    return F.interpolate(change.reshape(b, t * c, h, w), size=tuple(size), mode="bilinear",
                         align_corners=False).reshape(b, t, c, *size)


def fold(x: torch.Tensor, factor: int) -> torch.Tensor:
    """[B, T, C, H, W] -> [B, T*C*factor^2, H/factor, W/factor]."""
    b, t, c, h, w = x.shape
    return F.pixel_unshuffle(x.reshape(b, t * c, h, w), factor)


def unfold(x: torch.Tensor, channels: int, factor: int) -> torch.Tensor:
    y = F.pixel_shuffle(x, factor)
    b, tc, h, w = y.shape
    return y.reshape(b, tc // channels, channels, h, w)


def null_prompt(batch: int, device=None) -> dict[str, torch.Tensor]:
    return {"tokens": torch.zeros(batch, text.MAX_TOKENS, text.EMBEDDING_DIM, device=device),
            "mask": torch.ones(batch, text.MAX_TOKENS, dtype=torch.bool, device=device),
            "pooled": torch.zeros(batch, text.EMBEDDING_DIM, device=device)}


def frame_embedding(keyframes: torch.Tensor) -> torch.Tensor:
    """Keyframe numbers [N] (1 = the first after the start frame) -> sinusoidal embeddings [N, 64]."""
    half = FRAME_EMBEDDING_DIM // 2
    frequencies = torch.exp(-np.log(100.0) * torch.arange(half, device=keyframes.device) / half)
    angles = keyframes.float()[:, None] * frequencies[None]
    return torch.cat([angles.sin(), angles.cos()], dim=1)


def predict(unet, shape: PlannerShape, noisy_change: torch.Tensor, start: torch.Tensor, timestep, prompt: dict,
            keyframes: torch.Tensor | None = None) -> torch.Tensor:
    """The UNet's output (v, epsilon or the clean change, as its scheduler says) for the noisy change from
    the start frame [B, K, C, H, W], given the start frame [B, 1, C, H, W]. The frames backbone also takes
    which keyframes these are, [B, K] (default: all, 1..K) and a timestep per clip [B] or per frame [B*K]."""
    if shape.backbone == "stacked":
        if shape.tile_start:
            start = start.expand(-1, noisy_change.shape[1], -1, -1, -1)
        x = fold(torch.cat([noisy_change, start], dim=1), shape.fold)
        out = unet(x, timestep, encoder_hidden_states=prompt["tokens"], class_labels=prompt["pooled"],
                   encoder_attention_mask=prompt["mask"]).sample
        return unfold(out, start.shape[2], shape.fold)
    b, k, c, h, w = noisy_change.shape
    if keyframes is None:
        keyframes = torch.arange(1, k + 1, device=noisy_change.device).expand(b, k)
    frames = torch.cat([noisy_change.reshape(b * k, 1, c, h, w), start.repeat_interleave(k, dim=0)], dim=1)
    timestep = torch.as_tensor(timestep, device=noisy_change.device)
    if timestep.numel() == b:  # one per clip -> one per keyframe
        timestep = timestep.repeat_interleave(k)
    each = {name: value.repeat_interleave(k, dim=0) for name, value in prompt.items()}
    labels = torch.cat([each["pooled"], frame_embedding(keyframes.flatten()).to(each["pooled"].dtype)], dim=1)
    out = unet(fold(frames, shape.fold), timestep, encoder_hidden_states=each["tokens"], class_labels=labels,
               encoder_attention_mask=each["mask"]).sample
    return unfold(out, c, shape.fold).reshape(b, k, c, h, w)


def check_sampling(steps: int, guidance: float, samples: int) -> None:
    if steps < 1:
        raise UsageError(f"--steps must be at least 1 (got {steps})")
    if guidance < 0:
        raise UsageError(f"--guidance must be 0 or more (got {guidance})")
    if samples < 1:
        raise UsageError(f"--num-samples must be at least 1 (got {samples})")


@dataclass
class PlanOutput(BaseOutput):
    """rgb uint8 [N, K+1, H, W, 3] and depth float32 metres [N, K+1, H, W] (None for an RGB planner);
    frame 0 is the start frame."""
    rgb: np.ndarray
    depth: np.ndarray | None


class VideoPlannerPipeline(DiffusionPipeline):
    """Start image + instruction -> a plan video.

        pipe = VideoPlannerPipeline.from_pretrained("models/planner-rgbd")
        plan = pipe(image, "push the red block onto the blue pad", depth=depth, generator=torch.Generator().manual_seed(0))
    """

    def __init__(self, unet: UNet2DConditionModel, scheduler, planner: dict | None = None):
        super().__init__()
        if planner is None:
            raise Vid2ActError("the planner settings (planner.json) are missing")
        self.register_modules(unet=unet, scheduler=scheduler)
        self.planner = planner  # the plan's shape, normalization and provenance; planner.json on disk

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, **kwargs):
        if "planner" not in kwargs:
            import json
            kwargs["planner"] = json.loads((Path(pretrained_model_name_or_path) / PLANNER_FILE).read_text())
        return super().from_pretrained(pretrained_model_name_or_path, **kwargs)

    def save_pretrained(self, save_directory, **kwargs):
        from vid2act.files import write_json
        super().save_pretrained(save_directory, **kwargs)
        write_json(Path(save_directory) / PLANNER_FILE, self.planner)

    @property
    def shape(self) -> PlannerShape:
        p = self.planner
        return PlannerShape(p["frames"], p["stride"], p["modalities"], tuple(p["image_size"]), p.get("fold", 1),
                            p.get("scale", 1), p.get("backbone", "stacked"), p.get("tile_start", False))

    @torch.no_grad()
    def __call__(self, image: np.ndarray, prompt: str, depth: np.ndarray | None = None,
                 num_inference_steps: int = 10, guidance_scale: float = 2.0,
                 generator: torch.Generator | None = None, num_videos_per_prompt: int = 1) -> PlanOutput:
        shape, planner = self.shape, self.planner
        check_sampling(num_inference_steps, guidance_scale, num_videos_per_prompt)
        image = np.asarray(image)
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
            raise Vid2ActError(f"the start image must be uint8 RGB [H, W, 3]; got {image.dtype} {list(image.shape)}")
        if image.shape[:2] != shape.image_size:
            raise Vid2ActError(f"the start image is {image.shape[0]}x{image.shape[1]}; this planner draws "
                               f"{shape.image_size[0]}x{shape.image_size[1]} (pass --resize to resize it)")
        if shape.modalities == "rgbd":
            if depth is None:
                raise Vid2ActError("this planner is RGB-D and needs the start depth (--depth, or a --scene folder "
                                   "with start_depth.npy)")
            depth = np.asarray(depth, dtype=np.float32)
            if depth.shape != shape.image_size or not np.isfinite(depth).all():
                raise Vid2ActError(f"the start depth must be finite metres [{shape.image_size[0]}, "
                                   f"{shape.image_size[1]}]; got {list(depth.shape)}")
        else:
            depth = None
        n, device = num_videos_per_prompt, self.unet.device
        dtype = self.unet.dtype
        prompt_embeds = {k: v.to(device) for k, v in text.encode([prompt]).items()}
        cond = {k: v.expand(n, *v.shape[1:]) for k, v in prompt_embeds.items()}
        guided = guidance_scale != 1.0
        if guided:
            uncond = null_prompt(n, device)
            cond = {k: torch.cat([uncond[k], cond[k]]).to(dtype if v.is_floating_point() else v.dtype)
                    for k, v in cond.items()}
        else:
            cond = {k: v.to(dtype) if v.is_floating_point() else v for k, v in cond.items()}
        full_rgb = torch.from_numpy(image)[None, None]
        full_depth = torch.from_numpy(depth)[None, None] if depth is not None else None
        full_start = to_model(full_rgb, full_depth, planner["depth_mean"], planner["depth_std"])
        start = to_model(*shrink(full_rgb, full_depth, shape.scale), planner["depth_mean"], planner["depth_std"])
        start = start.to(device, dtype).expand(n, *start.shape[1:])
        c = shape.channels
        h, w = shape.plan_size
        if shape.backbone == "frames":  # one noise for every keyframe: a deterministic sampler keeps them consistent
            noise = torch.randn((n, 1, c, h, w), generator=generator).expand(n, shape.frames, c, h, w)
        else:
            noise = torch.randn((n, shape.frames, c, h, w), generator=generator)
        change = noise.contiguous().to(device)
        self.scheduler.set_timesteps(num_inference_steps, device=device)
        for t in self.scheduler.timesteps:
            model_in = self.scheduler.scale_model_input(change, t).to(dtype)
            if guided:
                both = predict(self.unet, shape, torch.cat([model_in, model_in]), torch.cat([start, start]), t,
                               cond).float()
                unconditional, conditional = both.chunk(2)
                estimate = unconditional + guidance_scale * (conditional - unconditional)
            else:
                estimate = predict(self.unet, shape, model_in, start, t, cond).float()
            # the scheduler works on flat [N, K*C, H, W] tensors
            step = self.scheduler.step(estimate.flatten(1, 2), t, change.flatten(1, 2), generator=generator)
            change = step.prev_sample.view_as(change)
        full_start = full_start.expand(n, *full_start.shape[1:])
        video = torch.cat([full_start, full_start + enlarge(change.float().cpu(), shape.image_size)], dim=1)
        rgb = ((video[:, :, :3].clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 1, 3, 4, 2).numpy()
        if shape.modalities == "rgbd":
            plan_depth = (video[:, :, 3] * planner["depth_std"] + planner["depth_mean"]).numpy()
            plan_depth[:, 0] = depth  # the start frame is the given one, exactly
            rgb[:, 0] = image
        else:
            plan_depth = None
            rgb[:, 0] = image
        return PlanOutput(rgb=rgb, depth=plan_depth)


# --- files -------------------------------------------------------------------------------------------------
def resolve_planner(reference: str) -> Path:
    from vid2act.idm.model import resolve
    return resolve(reference, default=DEFAULT_PLANNER)


PRECISIONS = {"fp32": torch.float32, "bf16": torch.bfloat16}


def load_planner(reference: str, device: str = "cpu", sampler: str | None = None,
                 precision: str = "fp32") -> VideoPlannerPipeline:
    """A planner folder (diffusers layout) or shipped name -> the pipeline on `device`. `precision` bf16 runs
    the UNet in bfloat16 (about 2x faster on CPUs with AMX or AVX512-BF16; plans differ from fp32 by a
    fraction of a grey level); the scheduler's arithmetic stays fp32."""
    import json

    if precision not in PRECISIONS:
        raise UsageError(f"unknown --precision {precision!r}; choose {' or '.join(PRECISIONS)}")

    from vid2act.files import check_action_space, load_json
    folder = resolve_planner(reference)
    if not (folder / "model_index.json").exists():
        hint = " (that is an IDM; give it to --idm)" if (folder / "config.json").exists() else ""
        raise Vid2ActError(f"{folder} has no model_index.json; is it a planner folder (from `vid2act train video`)?{hint}")
    planner_path = folder / PLANNER_FILE
    if not planner_path.exists():
        raise Vid2ActError(f"{folder} is incomplete: {PLANNER_FILE} is missing")
    planner = load_json(planner_path, "planner settings")
    if planner.get("format") != PLANNER_FORMAT:
        raise Vid2ActError(f"{planner_path} is of format {planner.get('format')!r}; this vid2act reads {PLANNER_FORMAT!r}")
    check_action_space(planner.get("action_space", {}), planner_path)
    for part in ("unet/config.json", "scheduler/scheduler_config.json"):
        if not (folder / part).exists():
            raise Vid2ActError(f"{folder} is incomplete: {part} is missing")
    weights = sorted((folder / "unet").glob("*.safetensors"))
    if not weights:
        others = [p.name for p in (folder / "unet").iterdir() if p.suffix in (".bin", ".pt", ".pth", ".ckpt")]
        hint = f" ({', '.join(others)} found: vid2act loads only safetensors, never pickles)" if others else ""
        raise Vid2ActError(f"{folder}/unet has no safetensors weights{hint}")
    try:
        unet = UNet2DConditionModel.from_pretrained(folder / "unet", use_safetensors=True,
                                                    torch_dtype=PRECISIONS[precision])
        scheduler_config = json.loads((folder / "scheduler" / "scheduler_config.json").read_text())
        scheduler = make_scheduler(sampler or _sampler_name(scheduler_config), scheduler_config)
    except (OSError, ValueError, RuntimeError, KeyError, EnvironmentError) as e:
        first_line = str(e).strip().splitlines()[0] if str(e).strip() else e.__class__.__name__
        raise Vid2ActError(f"{folder} could not be loaded ({first_line})") from None
    pipe = VideoPlannerPipeline(unet=unet.eval(), scheduler=scheduler, planner=planner)
    pipe.set_progress_bar_config(disable=True)
    return pipe.to(device)


def _sampler_name(scheduler_config: dict) -> str:
    for name, cls in SAMPLERS.items():
        if scheduler_config.get("_class_name") == cls.__name__:
            return name
    raise Vid2ActError(f"unknown scheduler {scheduler_config.get('_class_name')!r}; vid2act samples with "
                       f"{', '.join(c.__name__ for c in SAMPLERS.values())}")


def save_planner(folder: Path, unet: UNet2DConditionModel, planner: dict, scheduler, half: bool = False) -> None:
    """The diffusers layout into `folder` (which the caller creates atomically). `half` stores fp16 weights."""
    import copy
    unet = copy.deepcopy(unet).to("cpu")
    if half:
        unet = unet.half()
    pipe = VideoPlannerPipeline(unet=unet, scheduler=scheduler, planner=planner)
    pipe.save_pretrained(folder, safe_serialization=True)
