"""The training loop shared by the three stages (``emo train``, ``torchrun -m emo.train``).

Every random choice is a function of the seed, the optimizer step and the
micro-batch, drawn for the *global* batch and sliced per process: a run on N
processes, a resumed run and an uninterrupted single-process run with the same
global batch see the same samples, noise, timesteps and dropout, and so reach the
same weights (up to float summation order).
"""

from __future__ import annotations

import contextlib
import copy
import json
import logging
import math
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from emo.errors import CheckpointError, ConfigError
from emo.training.checkpoints import (
    checkpoint_name,
    find_resumable,
    list_checkpoints,
    prune_checkpoints,
    read_checkpoint,
    write_checkpoint,
)
from emo.training.dataset import ClipDataset, SampleSpec, mix_seed
from emo.training.distributed import DistContext, init_distributed
from emo.training.ema import EMAWeights
from emo.training.engine import Engine, make_engine
from emo.training.loss import diffusion_loss
from emo.training.params import FrozenWeightsChanged, apply_trainable, fingerprint

if TYPE_CHECKING:
    from emo.denoiser import EMODenoiser
    from emo.pipelines.emo_pipeline import EMOPipeline
    from emo.training.settings import LearningRateSchedule, TrainingConfig

__all__ = ["TrainResult", "Trainer", "train"]

logger = logging.getLogger("emo.training")

_AUTOCAST = {"no": None, "bf16": torch.bfloat16, "fp16": torch.float16}


@dataclass
class TrainResult:
    """What a finished run reports.

    Attributes
    ----------
    step
        Optimizer steps done.
    losses
        ``(step, loss)`` of every logged step (averaged over the logging window and processes).
    pipeline_dir
        The saved pipeline (``EMOPipeline.from_pretrained`` loads it; the next stage
        starts from it), written by rank 0.
    checkpoint
        The last checkpoint folder.
    trained_parameters
        Names of the parameters that learned.
    rank_fingerprints
        SHA-256 of the trained parameters on every process (equal when in sync).
    resumed_from
        The checkpoint this run continued from, if any.
    """

    step: int
    losses: list[tuple[int, float]] = field(default_factory=list)
    pipeline_dir: Path | None = None
    checkpoint: Path | None = None
    trained_parameters: list[str] = field(default_factory=list)
    rank_fingerprints: list[str] = field(default_factory=list)
    resumed_from: Path | None = None


def _lr_lambda(warmup: int, total: int, schedule: LearningRateSchedule) -> Callable[[int], float]:
    def factor(step: int) -> float:
        if warmup and step < warmup:
            return (step + 1) / warmup
        if schedule == "cosine":
            progress = min(1.0, (step - warmup) / max(1, total - warmup))
            return 0.5 * (1.0 + math.cos(math.pi * progress))
        return 1.0

    return factor


@dataclass
class _Run:
    """What the pieces of one run share."""

    ctx: DistContext
    pipe: EMOPipeline
    host: EMOPipeline | None
    denoiser: EMODenoiser
    engine: Engine
    dataset: ClipDataset
    optimizer: torch.optim.Optimizer
    lr_sched: Any
    scaler: Any
    ema: EMAWeights | None
    trained_names: list[str]
    frozen_print: str
    global_batch: int
    per_epoch: int
    ckpt_dir: Path


class Trainer:
    """One stage's training run.

    Parameters
    ----------
    config
        The stage's settings.
    stop_after
        Stop (after saving a checkpoint) once this many optimizer steps are done in
        total, as if the process had been stopped there; ``None`` runs to
        ``training.max_steps``. For tests and time-sliced schedulers.
    """

    def __init__(self, config: TrainingConfig, *, stop_after: int | None = None) -> None:
        self.config = config
        self.stop_after = stop_after
        self.output = Path(config.output_dir)
        self.ctx: DistContext | None = None

    # -- setup ------------------------------------------------------------------------------
    def _spec(self, pipe: EMOPipeline, denoiser: EMODenoiser) -> SampleSpec:
        cfg = self.config
        if cfg.stage == 1:
            return SampleSpec(
                frames_per_clip=cfg.data.frames_per_clip or 1,
                min_reference_distance=cfg.data.min_reference_distance,
                mouth_boxes=cfg.loss.mouth_weight > 0,
            )
        frames_per_clip = pipe.settings.frames_per_clip
        motion = pipe.settings.motion_frames
        limit = int(pipe.backbone.config["motion_max_positions"])
        if frames_per_clip + motion > limit:
            raise ConfigError(
                f"data.frames_per_clip + data.motion_frames = {frames_per_clip + motion} exceeds the "
                f"temporal modules' {limit} positions (model.backbone.motion_max_positions)"
            )
        return SampleSpec(
            frames_per_clip=frames_per_clip,
            motion_frames=motion,
            audio_context=denoiser.audio_context,
            with_speed=cfg.stage == 3,
            speed_context=int(pipe.backbone.config.get("speed_context_frames", 0) or 0),
            min_reference_distance=cfg.data.min_reference_distance,
            zero_motion_probability=cfg.data.zero_motion_probability,
            mouth_boxes=cfg.loss.mouth_weight > 0,
        )

    def _check_mouth_boxes(self, dataset: ClipDataset) -> None:
        """``loss.mouth_weight`` needs mouth boxes: refuse data without any, warn on gaps."""
        have = dataset.clips_with("mouth_boxes")
        root = self.config.data.root
        if have == 0:
            raise ConfigError(
                f"loss.mouth_weight is set but no clip of {root!r} has mouth boxes; add them "
                f"with: emo mouth-boxes {root} (needs emo[face])"
            )
        if have < len(dataset):
            logger.warning(
                "%d of %d clips have no mouth boxes and weigh 1 everywhere; emo mouth-boxes %s "
                "adds them",
                len(dataset) - have,
                len(dataset),
                root,
            )

    def _use_latents(self, info: dict[str, Any], pipe: EMOPipeline) -> bool:
        cached = info.get("latents")
        if not cached:
            return False
        from emo.training.prepare import vae_fingerprint

        if cached.get("vae_sha256") == vae_fingerprint(pipe.vae):
            return True
        logger.warning(
            "the data's cached latents come from another VAE than the model's: encoding frames "
            "on the fly instead"
        )
        return False

    # -- the loop ---------------------------------------------------------------------------
    def run(self) -> TrainResult:
        """Train to ``training.max_steps`` (or ``stop_after``), resuming when possible."""
        cfg = self.config
        ctx = init_distributed(cfg.training.device, cfg.distributed.backend)
        self.ctx = ctx
        try:
            return self._run(ctx)
        finally:
            ctx.close()

    def _run(self, ctx: DistContext) -> TrainResult:
        from emo.denoiser import EMODenoiser
        from emo.training.data_format import read_dataset_info
        from emo.training.model import build_pipeline

        cfg = self.config
        if cfg.training.threads is not None:
            torch.set_num_threads(cfg.training.threads)
        info = read_dataset_info(Path(cfg.data.root))
        pipe = build_pipeline(cfg, info)
        denoiser = EMODenoiser(
            pipe.reference_net, pipe.backbone, pipe.face_locator, pipe.audio_projection
        )
        trained_names = apply_trainable(denoiser, cfg.trainable)
        trained_set = set(trained_names)
        frozen_names = [n for n, _ in denoiser.named_parameters() if n not in trained_set]
        frozen_print = fingerprint(dict(denoiser.named_parameters()), frozen_names)
        if cfg.training.gradient_checkpointing:
            pipe.backbone.enable_gradient_checkpointing()
            pipe.reference_net.enable_gradient_checkpointing()
        device = ctx.device
        pipe.to(device)
        pipe.vae.eval().requires_grad_(False)
        denoiser.train()
        if cfg.noise.zero_snr and cfg.noise.prediction_type == "epsilon":
            logger.warning("noise.zero_snr with epsilon prediction: use v_prediction")

        spec = self._spec(pipe, denoiser)
        dataset = ClipDataset(
            cfg.data.root, spec, seed=cfg.seed, use_latents=self._use_latents(info, pipe)
        )
        if cfg.loss.mouth_weight > 0:
            self._check_mouth_boxes(dataset)
        batch_size = cfg.training.batch_size
        global_batch = batch_size * ctx.world_size
        per_epoch = len(dataset) // global_batch
        if per_epoch == 0:
            raise ConfigError(
                f"the data set has {len(dataset)} usable clips, fewer than one global batch "
                f"({batch_size} x {ctx.world_size} processes); prepare more data or lower "
                "training.batch_size"
            )

        o = cfg.optimizer
        autocast_dtype = _AUTOCAST[cfg.training.mixed_precision]
        strategy = cfg.distributed.strategy if ctx.distributed else "single"
        if strategy == "fsdp" and cfg.training.ema_decay is not None:
            raise ConfigError(
                "training.ema_decay with distributed.strategy 'fsdp' is not supported yet; "
                "use 'ddp' or no EMA"
            )

        ckpt_dir = self.output / "checkpoints"
        step = 0
        saved = self._resumable(ckpt_dir, ctx, frozen_print, trained_names, global_batch, strategy)
        resumed_from: Path | None = saved["path"] if saved else None
        if saved:
            with torch.no_grad():
                named = dict(denoiser.named_parameters())
                for name, value in saved["trained"].items():
                    named[name].copy_(value.to(device))
            step = int(saved["state"]["step"])
        # A CPU copy for validation and saving when the model is sharded (rank 0 only).
        host = copy.deepcopy(pipe).to("cpu") if strategy == "fsdp" and ctx.is_main else None
        find_unused = cfg.distributed.find_unused_parameters
        engine = make_engine(
            denoiser, ctx, strategy, cfg.stage == 1 if find_unused is None else find_unused
        )
        params = [p for n, p in denoiser.named_parameters() if n in trained_set]
        optimizer = torch.optim.AdamW(
            params, lr=o.learning_rate, betas=o.betas, eps=o.eps, weight_decay=o.weight_decay
        )
        lr_sched = torch.optim.lr_scheduler.LambdaLR(
            optimizer, _lr_lambda(o.warmup_steps, cfg.training.max_steps, o.schedule)
        )
        scaler = torch.amp.GradScaler(device.type, enabled=cfg.training.mixed_precision == "fp16")
        ema = (
            EMAWeights(denoiser, trained_names, cfg.training.ema_decay)
            if cfg.training.ema_decay is not None
            else None
        )
        if saved:
            ts = saved["training_state"]
            engine.load_optimizer_state(optimizer, ts["optimizer"])
            lr_sched.load_state_dict(ts["lr_scheduler"])
            scaler.load_state_dict(ts["scaler"])
            torch.set_rng_state(ts["rng"]["torch"])
            if ema is not None and saved["ema"] is not None:
                ema.load_state_dict(saved["ema"])
            if ctx.is_main:
                self._say(f"resumed from {resumed_from} (step {step})")

        run = _Run(
            ctx=ctx,
            pipe=pipe,
            host=host,
            denoiser=denoiser,
            engine=engine,
            dataset=dataset,
            optimizer=optimizer,
            lr_sched=lr_sched,
            scaler=scaler,
            ema=ema,
            trained_names=trained_names,
            frozen_print=frozen_print,
            global_batch=global_batch,
            per_epoch=per_epoch,
            ckpt_dir=ckpt_dir,
        )
        accum = cfg.training.gradient_accumulation
        end = (
            cfg.training.max_steps
            if self.stop_after is None
            else min(cfg.training.max_steps, self.stop_after)
        )
        metrics = _Metrics(self.output, ctx.is_main, cfg.logging.tensorboard)
        result = TrainResult(step=step, trained_parameters=trained_names, resumed_from=resumed_from)
        bar = self._progress(ctx, step, cfg.training.max_steps)
        window: list[torch.Tensor] = []
        began = time.perf_counter()
        last_saved = step if resumed_from is not None else -1
        order_cache: dict[int, list[int]] = {}
        try:
            while step < end:
                for micro in range(accum):
                    counter = step * accum + micro
                    epoch, k = divmod(counter, per_epoch)
                    indices = self._epoch_order(order_cache, epoch, len(dataset), ctx)[
                        k * batch_size : (k + 1) * batch_size
                    ]
                    batch = dataset.batch(indices, epoch)
                    sync = micro == accum - 1 or not ctx.distributed
                    with contextlib.nullcontext() if sync else engine.no_sync():
                        loss = self._micro_step(
                            engine, pipe, batch, step, micro, ctx, dataset, autocast_dtype
                        )
                        scaler.scale(loss / accum).backward()  # type: ignore[no-untyped-call]
                    window.append(loss.detach())
                if o.max_grad_norm is not None:
                    scaler.unscale_(optimizer)
                    torch.nn.utils.clip_grad_norm_(params, o.max_grad_norm)
                scaler.step(optimizer)
                scaler.update()
                optimizer.zero_grad(set_to_none=True)
                lr_sched.step()
                if ema is not None:
                    ema.update(denoiser)
                step += 1
                bar.update(1)
                if step % cfg.logging.every == 0 or step == end:
                    value = float(ctx.mean(torch.stack(window).mean()))
                    window.clear()
                    result.losses.append((step, value))
                    elapsed = time.perf_counter() - began
                    metrics.log(
                        {
                            "step": step,
                            "epoch": (step * accum) // per_epoch,
                            "loss": value,
                            "lr": lr_sched.get_last_lr()[0],
                            "seconds": round(elapsed, 3),
                        }
                    )
                    bar.set_postfix(loss=f"{value:.4f}")
                if step % cfg.checkpoints.every == 0 or step == end:
                    result.checkpoint = self._save(run, step)
                    last_saved = step
                every = cfg.validation.every
                if every is not None and step % every == 0 and step != cfg.training.max_steps:
                    self._validate(run, step)
        finally:
            bar.close()
            metrics.close()
        if last_saved != step and step > 0:
            result.checkpoint = self._save(run, step)
        if result.checkpoint is None and resumed_from is not None:
            result.checkpoint = resumed_from
        if (
            fingerprint(engine.full_parameters(frozen_names), frozen_names) != frozen_print
            and ctx.is_main
        ):
            raise FrozenWeightsChanged(
                "a frozen parameter changed during training; this is a bug in emo, please report it"
            )
        result.step = step
        trained_now = engine.full_parameters(trained_names)
        if strategy == "fsdp":  # shards differ by design: report the gathered whole
            result.rank_fingerprints = (
                [fingerprint(trained_now, trained_names)] if ctx.is_main else []
            )
        else:
            result.rank_fingerprints = ctx.gather_strings(fingerprint(trained_now, trained_names))
        if step >= cfg.training.max_steps:
            if cfg.validation.at_end:
                self._validate(run, step)
            result.pipeline_dir = self._save_pipeline(run)
        if ctx.is_main:
            summary = {
                "step": step,
                "losses": result.losses,
                "rank_fingerprints": result.rank_fingerprints,
                "trained_parameters": len(trained_names),
                "pipeline_dir": os.fspath(result.pipeline_dir) if result.pipeline_dir else None,
            }
            (self.output / "train_result.json").write_text(json.dumps(summary, indent=1) + "\n")
        ctx.barrier()
        return result

    # -- pieces -----------------------------------------------------------------------------
    def _resumable(
        self,
        ckpt_dir: Path,
        ctx: DistContext,
        frozen_print: str,
        trained_names: list[str],
        global_batch: int,
        strategy: str,
    ) -> dict[str, Any] | None:
        """The checkpoint to resume from, checked against this run; ``None`` to start fresh."""
        cfg = self.config
        existing = list_checkpoints(ckpt_dir)
        if existing and cfg.checkpoints.resume == "never":
            raise ConfigError(
                f"{os.fspath(ckpt_dir)!r} holds checkpoints and checkpoints.resume is 'never'; "
                "use a new output_dir or resume 'auto'"
            )
        if not existing:
            return None
        path = find_resumable(ckpt_dir, warn=self._warn if ctx.is_main else None)
        assert path is not None
        saved = read_checkpoint(path)
        state = saved["state"]
        where = os.fspath(path)
        if state.get("frozen_fingerprint") != frozen_print:
            raise CheckpointError(
                f"checkpoint {where!r} was trained from another starting model (its frozen "
                "weights differ); use the config it was made with"
            )
        if state.get("trained_parameters") != trained_names:
            raise CheckpointError(
                f"checkpoint {where!r} trained other parameter groups; use the config it was "
                "made with"
            )
        accum = cfg.training.gradient_accumulation
        if (state["global_batch"], state["gradient_accumulation"]) != (global_batch, accum):
            raise CheckpointError(
                f"checkpoint {where!r} was made with global batch {state['global_batch']} x "
                f"{state['gradient_accumulation']} accumulation; this run has {global_batch} x "
                f"{accum}; keep batch_size x processes and gradient_accumulation to resume exactly"
            )
        if (state.get("strategy", "single") == "fsdp") != (strategy == "fsdp"):
            raise CheckpointError(
                f"checkpoint {where!r} was written by a {state.get('strategy')!r} run; resume it "
                f"with the same distributed.strategy (this run: {strategy!r})"
            )
        return {**saved, "path": path}

    def _epoch_order(
        self, cache: dict[int, list[int]], epoch: int, length: int, ctx: DistContext
    ) -> list[int]:
        """This process's sample order in ``epoch`` (torch's DistributedSampler)."""
        if epoch not in cache:
            from torch.utils.data import DistributedSampler

            sampler: DistributedSampler[int] = DistributedSampler(
                range(length),  # type: ignore[arg-type]
                num_replicas=ctx.world_size,
                rank=ctx.rank,
                shuffle=True,
                seed=self.config.seed,
                drop_last=True,
            )
            sampler.set_epoch(epoch)
            cache.clear()
            cache[epoch] = list(sampler)
        return cache[epoch]

    def _micro_step(
        self,
        engine: Any,
        pipe: EMOPipeline,
        batch: dict[str, torch.Tensor],
        step: int,
        micro: int,
        ctx: DistContext,
        dataset: ClipDataset,
        autocast_dtype: torch.dtype | None,
    ) -> torch.Tensor:
        """The loss of this process's part of a global micro-batch.

        Noise, timesteps and dropout are drawn for the whole global batch from a
        generator seeded by ``(seed, step, micro)``; this process takes rows
        ``rank, rank + world, ...``, the rows of its samples in the global batch.
        """
        cfg = self.config
        rows = slice(ctx.rank, None, ctx.world_size)
        local = batch["target"].shape[0]
        size = local * ctx.world_size
        shape = self._latent_shape(pipe, batch, dataset.use_latents)
        gen = torch.Generator().manual_seed(mix_seed(cfg.seed, 1, step, micro))
        noise = torch.randn((size, *shape), generator=gen)[rows]
        total = int(pipe.scheduler.config["num_train_timesteps"])
        timesteps = torch.randint(0, total, (size,), generator=gen)[rows]
        u = torch.rand((size,), generator=gen)[rows].to(ctx.device)
        d = cfg.dropout
        both = (u >= d.reference + d.audio) & (u < d.reference + d.audio + d.both)
        drop_reference = (u < d.reference) | both
        drop_audio = ((u >= d.reference) & (u < d.reference + d.audio)) | both
        motion_noise = None
        if cfg.data.motion_noise > 0.0 and "motion" in batch:
            # Drawn after everything above, so runs without it keep their random stream.
            motion_shape = (*shape[:1], batch["motion"].shape[2], *shape[2:])
            sigma = torch.rand((size, 1, 1, 1, 1), generator=gen) * cfg.data.motion_noise
            motion_noise = (sigma * torch.randn((size, *motion_shape), generator=gen))[rows]
        return diffusion_loss(
            engine,
            pipe,
            batch,
            cached=dataset.use_latents,
            noise=noise,
            timesteps=timesteps,
            drop_reference=drop_reference,
            drop_audio=drop_audio,
            autocast_dtype=autocast_dtype,
            speed_fps=dataset.fps,
            motion_noise=motion_noise,
            change_weight=cfg.loss.change_weight,
            mouth_weight=cfg.loss.mouth_weight,
            frame_size=dataset.resolution,
        )

    @staticmethod
    def _latent_shape(
        pipe: EMOPipeline, batch: dict[str, torch.Tensor], cached: bool
    ) -> tuple[int, ...]:
        """``(c, f, h, w)`` of the target latents of one sample."""
        target = batch["target"]
        if cached:
            return tuple(target.shape[1:])
        factor = pipe.vae_scale_factor
        channels = int(pipe.vae.config["latent_channels"])
        return (channels, target.shape[2], target.shape[3] // factor, target.shape[4] // factor)

    def _save(self, run: _Run, step: int) -> Path:
        """Write a checkpoint (rank 0; the gathering is collective)."""
        cfg = self.config
        ctx = run.ctx
        path = run.ckpt_dir / checkpoint_name(step)
        trained = run.engine.full_parameters(run.trained_names)
        optimizer_state = run.engine.optimizer_state(run.optimizer)
        if ctx.is_main:
            accum = cfg.training.gradient_accumulation
            write_checkpoint(
                run.ckpt_dir,
                step,
                trained=trained,
                ema=run.ema.state_dict() if run.ema is not None else None,
                training_state={
                    "optimizer": optimizer_state,
                    "lr_scheduler": run.lr_sched.state_dict(),
                    "scaler": run.scaler.state_dict(),
                    "rng": {"torch": torch.get_rng_state()},
                },
                state={
                    "step": step,
                    "epoch": (step * accum) // run.per_epoch,
                    "batch_in_epoch": (step * accum) % run.per_epoch,
                    "global_batch": run.global_batch,
                    "gradient_accumulation": accum,
                    "world_size": ctx.world_size,
                    "strategy": run.engine.strategy,
                    "seed": cfg.seed,
                    "stage": cfg.stage,
                    "frozen_fingerprint": run.frozen_print,
                    "trained_parameters": run.trained_names,
                    "config": cfg.to_dict(),
                },
            )
            prune_checkpoints(run.ckpt_dir, cfg.checkpoints.keep)
        ctx.barrier()
        return path

    @contextlib.contextmanager
    def _output_pipeline(self, run: _Run) -> Iterator[EMOPipeline | None]:
        """The pipeline to validate or save, holding the weights to publish (EMA if kept).

        Collective under FSDP (the shards are gathered into rank 0's CPU copy); yields
        ``None`` on the other ranks.
        """
        if run.host is not None or run.engine.strategy == "fsdp":
            names = [n for n, _ in run.denoiser.named_parameters()]
            full = run.engine.full_parameters(names)
            if run.host is None:
                yield None
                return
            from emo.denoiser import EMODenoiser

            host = run.host
            mirror = EMODenoiser(
                host.reference_net, host.backbone, host.face_locator, host.audio_projection
            )
            with torch.no_grad():
                for name, param in mirror.named_parameters():
                    param.copy_(full[name])
            host.to(run.ctx.device)
            try:
                yield host
            finally:
                host.to("cpu")
            return
        if not run.ctx.is_main:
            yield None
            return
        ema = run.ema
        if ema is None:
            yield run.pipe
            return
        backup = {
            n: p.detach().clone() for n, p in run.denoiser.named_parameters() if n in ema.shadow
        }
        ema.copy_to(run.denoiser)
        try:
            yield run.pipe
        finally:
            with torch.no_grad():
                for name, param in run.denoiser.named_parameters():
                    if name in backup:
                        param.copy_(backup[name])

    def _validate(self, run: _Run, step: int) -> None:
        with self._output_pipeline(run) as pipe:
            if pipe is not None:
                from emo.training.validation import write_validation_clip

                path = self.output / "validation" / f"step-{step:08d}.mp4"
                modules = [
                    pipe.reference_net,
                    pipe.backbone,
                    pipe.face_locator,
                    pipe.audio_projection,
                ]
                for module in modules:
                    module.eval()
                try:
                    write_validation_clip(
                        pipe,
                        run.dataset,
                        path,
                        num_inference_steps=self.config.validation.num_inference_steps,
                        seconds=self.config.validation.seconds,
                        seed=self.config.seed,
                    )
                finally:
                    for module in modules:
                        module.train()
                self._say(f"validation clip: {path}")
        run.ctx.barrier()

    def _save_pipeline(self, run: _Run) -> Path:
        path = self.output / "pipeline"
        with self._output_pipeline(run) as pipe:
            if pipe is not None:
                device = pipe.device
                pipe.to("cpu")
                try:
                    pipe.save_pretrained(path)
                finally:
                    pipe.to(device)
                self._say(f"saved the trained pipeline to {path}")
        run.ctx.barrier()
        return path

    def _progress(self, ctx: DistContext, step: int, total: int) -> Any:
        from tqdm.auto import tqdm

        show = ctx.is_main and self.config.logging.progress_bar
        return tqdm(
            total=total,
            initial=step,
            desc=f"emo train stage {self.config.stage}",
            unit="step",
            disable=not show,
        )

    def _say(self, text: str) -> None:
        logger.info(text)

    def _warn(self, text: str) -> None:
        logger.warning(text)


class _Metrics:
    """``metrics.jsonl`` (and TensorBoard events when installed), on rank 0 only."""

    def __init__(self, output: Path, enabled: bool, tensorboard: bool) -> None:
        self.enabled = enabled
        self.file: Any = None
        self.board: Any = None
        if not enabled:
            return
        output.mkdir(parents=True, exist_ok=True)
        self.file = (output / "metrics.jsonl").open("a", encoding="utf-8")
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:  # the tensorboard package is optional
                return
            self.board = SummaryWriter(os.fspath(output / "tensorboard"))

    def log(self, record: dict[str, Any]) -> None:
        if not self.enabled:
            return
        self.file.write(json.dumps(record) + "\n")
        self.file.flush()
        if self.board is not None:
            for key in ("loss", "lr"):
                self.board.add_scalar(f"train/{key}", record[key], record["step"])

    def close(self) -> None:
        if self.file is not None:
            self.file.close()
        if self.board is not None:
            self.board.close()


def train(config: TrainingConfig, *, stop_after: int | None = None) -> TrainResult:
    """Run one training stage; see :class:`Trainer`."""
    return Trainer(config, stop_after=stop_after).run()
