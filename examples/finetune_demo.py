"""Continue training a demo model on new data: the bundled ``emo-demo`` learns real voices.

The bundled model was trained from nothing on the formant synthesiser's speech
(``examples/train_demo.py``). This continues it, on a prepared data set that mixes those
clips with clips spoken and sung by espeak-ng and festival voices
(``examples/make_voice_data.py``), in one run of the trainer's stage 3 (motion frames
and speed on, as in generation) with every parameter group learning: the audio
attention must learn new voices, the temporal modules and speed layers must keep
working with it. Its VAE stays, so the data set's latents must be the model's own
(``emo prepare --vae MODEL/vae``).

Usage::

    python examples/finetune_demo.py --data runs/ft/data_latents --out runs/ft --steps 3000
    python examples/finetune_demo.py --data ... --out runs/ft --steps 2000 --export-package
    python examples/finetune_demo.py --data ... --out runs/ft --steps 4000 --schedule cosine

A cut-short run resumes from its newest checkpoint; ``--steps`` smaller than the steps
done ends it there and saves the model.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, os.fspath(HERE))

from train_demo import (  # noqa: E402
    PACKAGE_MODEL,
    RECIPE,
    Record,
    _machine,
    export,
    finish,
    stage_config,
)

from emo.training.settings import LEARNING_RATE_SCHEDULES, PARAMETER_GROUPS  # noqa: E402

#: Every group learns: the audio attention meets new voices, the rest keeps up with it.
GROUPS = list(PARAMETER_GROUPS)


def finetune_config(
    data: Path,
    out: Path,
    base: Path,
    steps: int,
    learning_rate: float,
    batch: int,
    device: str,
    schedule: str = "constant",
    change_weight: float = 0.0,
    mouth_weight: float = 0.0,
    trainable: list[str] | None = None,
) -> dict[str, Any]:
    """The trainer config: ``train_demo``'s stage 3 from ``base``, every group trainable by default.

    ``schedule`` is the learning rate's after the warm-up: ``"constant"`` (the shipped
    model's fine-tune) or ``"cosine"``, decaying to 0 at ``steps``, for a last run whose
    small final steps settle details such as the eyes. ``change_weight`` is the trainer's
    ``loss.change_weight``: above 0 the latent pixels that differ from the reference (the
    mouth, the eyes, a turning head) weigh more. ``mouth_weight`` is ``loss.mouth_weight``:
    above 0 the latent pixels in each frame's mouth box weigh more (the data needs mouth
    boxes: ``emo mouth-boxes DATA_DIR``). ``trainable`` names the parameter groups trained
    (``training.trainable``; default all): ``["audio"]`` trains only the audio projection and
    the Backbone's audio attentions, so the rest of the model, the look of the face included,
    cannot drift.
    """
    config = stage_config(3, data, out, base, RECIPE, device)
    config["seed"] = RECIPE["seed"] + 10  # another sample order than the base's stage 3
    config["optimizer"].update(learning_rate=learning_rate, warmup_steps=50, schedule=schedule)
    config["training"].update(
        max_steps=steps, batch_size=batch, trainable=list(trainable or GROUPS)
    )
    config["checkpoints"]["every"] = 100
    config["loss"]["change_weight"] = change_weight
    config["loss"]["mouth_weight"] = mouth_weight
    return config


def main(argv: list[str] | None = None) -> int:
    from emo.training import load_config, train

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True, help="prepared data with the base's latents")
    parser.add_argument("--out", required=True, help="run folder (resumed when it exists)")
    parser.add_argument("--base", default=os.fspath(PACKAGE_MODEL), help="the model to continue")
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--learning-rate", type=float, default=2e-4)
    parser.add_argument("--batch-size", type=int, default=2)
    parser.add_argument(
        "--schedule",
        choices=LEARNING_RATE_SCHEDULES,
        default="constant",
        help="learning rate after the warm-up: constant, or cosine decay to 0 at --steps",
    )
    parser.add_argument(
        "--change-weight",
        type=float,
        default=0.0,
        help="weigh latent pixels that differ from the reference more (loss.change_weight)",
    )
    parser.add_argument(
        "--mouth-weight",
        type=float,
        default=0.0,
        help="weigh latent pixels in each frame's mouth box more (loss.mouth_weight)",
    )
    parser.add_argument(
        "--trainable",
        default=",".join(GROUPS),
        help="comma-separated parameter groups to train (training.trainable; default all): "
        + ", ".join(GROUPS),
    )
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--export", default=None, help="copy the finished model folder here")
    parser.add_argument("--export-package", action="store_true", help="copy it into the package")
    args = parser.parse_args(argv)
    # checked before anything is written
    trainable = [g.strip() for g in args.trainable.split(",") if g.strip()]
    unknown = sorted(set(trainable) - set(GROUPS))
    if unknown or not trainable:
        parser.error(
            f"--trainable: unknown or no groups {unknown}; choose from {', '.join(GROUPS)}"
        )
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    record = Record(out / "record.json")
    record.data.setdefault("machine", _machine())
    base = Path(args.base)
    record.continue_from(base)
    stage_dir = out / "finetune"
    config = finetune_config(
        Path(args.data), stage_dir, base, args.steps, args.learning_rate, args.batch_size,
        args.device, args.schedule, args.change_weight, args.mouth_weight, trainable,
    )  # fmt: skip
    stage_dir.mkdir(parents=True, exist_ok=True)
    (stage_dir / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    began = record.start("finetune")
    result = train(load_config(config))
    record.save(
        "finetune",
        steps=result.step,
        seconds=round(time.time() - began, 1),
        final_loss=result.losses[-1][1] if result.losses else None,
        trained_parameters=len(result.trained_parameters),
        data=os.fspath(Path(args.data).resolve()),
        learning_rate=args.learning_rate,
        schedule=args.schedule,
        change_weight=args.change_weight,
        mouth_weight=args.mouth_weight,
        trainable=trainable,
        batch_size=args.batch_size,
    )
    # the recipe's generation defaults; the frame size is the base's own
    final = finish(stage_dir / "pipeline", out / "emo-demo", RECIPE)
    (final / "training.json").write_text(json.dumps(record.data, indent=2) + "\n")
    if args.export_package:
        args.export = os.fspath(PACKAGE_MODEL)
    if args.export:
        export(final, Path(args.export))
    print(f"[finetune] model: {final}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
