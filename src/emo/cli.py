"""The ``emo`` command line: ``emo plugins``, ``emo generate``, ``emo generate-many``, ``emo face`` and ``emo detect``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from emo import cli_generate_many, cli_prepare, cli_train
from emo._version import __version__
from emo.cli_detect import add_detect_parser
from emo.cli_face import add_face_parser
from emo.cli_provenance import add_provenance_arguments
from emo.errors import EMOError, Terminated

__all__ = ["build_parser", "main"]

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


def _cmd_plugins(args: argparse.Namespace) -> int:
    from emo import plugins

    statuses = plugins.check(args.kind)
    broken = 0
    for kind in plugins.KINDS if args.kind is None else [plugins.normalize_kind(args.kind).kind]:
        spec = plugins.KINDS[kind]
        print(f"{kind} ({spec.group})")
        rows = [s for s in statuses if s.info.kind == kind]
        if not rows:
            print("  (none)")
        for status in rows:
            info = status.info
            dist = info.distribution or "in-process"
            if info.version:
                dist = f"{dist} {info.version}"
            state = "ok" if status.loads else "BROKEN"
            print(f"  {info.name:<14} {state:<7} {dist:<24} {info.value}")
            if status.error:
                broken += 1
                print(f"      error: {status.error}")
            for other in status.shadowed:
                print(f"      shadows: {other.origin} (ignored)")
    return EXIT_ERROR if broken and args.strict else EXIT_OK


def _cmd_generate(args: argparse.Namespace) -> int:
    from emo.cli_generate import run_generate

    return run_generate(args)


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser of the ``emo`` command."""
    parser = argparse.ArgumentParser(
        prog="emo",
        description="EMO: one portrait + one audio track -> a talking or singing video.",
    )
    parser.add_argument("--version", action="version", version=f"emo {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("plugins", help="list every plugin of every kind and whether it loads")
    p.add_argument("--kind", default=None, help="only this kind (audio_encoder, scheduler, ...)")
    p.add_argument("--strict", action="store_true", help="exit with 1 if any plugin is broken")
    p.set_defaults(func=_cmd_plugins)

    g = sub.add_parser("generate", help="generate a video from a portrait and an audio file")
    g.add_argument("image", help="portrait image (png, jpg, webp, ...)")
    g.add_argument(
        "audio", help="speech or singing audio (wav, flac, mp3, m4a, or a video's audio)"
    )
    g.add_argument("-o", "--output", required=True, help="output video (.mp4, .webm, .gif, folder)")
    g.add_argument(
        "--model",
        default=None,
        help="saved pipeline folder, Hallo's pretrained_models folder, or bundled model name "
        "(default: the bundled emo-demo model)",
    )
    g.add_argument("--steps", type=int, default=None, help="denoising steps")
    g.add_argument("--seed", type=int, default=0, help="random seed")
    g.add_argument(
        "--init-strength",
        type=float,
        default=None,
        help="start each clip from its anchor (the portrait, then the previous clip's last "
        "frame) noised this far, in (0, 1]; 1 = pure noise (default: the model's setting)",
    )
    g.add_argument("--scheduler", default=None, help="scheduler plugin name")
    g.add_argument("--face-mask", default=None, help="face mask plugin name (auto, full, ...)")
    g.add_argument(
        "--box",
        default=None,
        metavar="X0,Y0,X1,Y1",
        help="the face region as a box (pixels, or fractions of the image): uses the box mask",
    )
    g.add_argument("--writer", default=None, help="video writer plugin name (default: from suffix)")
    g.add_argument("--fps", type=float, default=None, help="frames per second")
    g.add_argument("--size", type=int, default=None, help="generated height and width in pixels")
    g.add_argument(
        "--output-size",
        default=None,
        metavar="N|native",
        help="shorter side in pixels of the frames written: the decoded frames are upscaled "
        "(bicubic, antialiased) to it before the watermark is embedded, so the mark survives "
        "a re-encode (it needs about 256 px); 'native' writes the generated size (default: "
        "the model's setting; emo-demo saves 256)",
    )
    g.add_argument("--device", default="cpu", help="torch device, e.g. cpu, cuda, cuda:1")
    g.add_argument(
        "--dtype",
        default="float32",
        choices=["float32", "float16", "bfloat16"],
        help="weights dtype: bfloat16 is the fast path on CPUs with AVX512-BF16/AMX and on "
        "GPUs (float16 too, on GPUs); see docs/guide/performance.md",
    )
    g.add_argument(
        "--compile",
        action="store_true",
        help="torch.compile the Backbone (minutes to compile; pays on GPUs and long runs, "
        "not for a short video on a CPU)",
    )
    g.add_argument("--quiet", action="store_true", help="no progress bar")
    g.add_argument(
        "--overlap-decoding",
        default="auto",
        choices=["auto", "on", "off"],
        help="decode and write each clip while the next is denoised; the same video "
        "(auto: on for CUDA, off on a CPU)",
    )
    g.add_argument(
        "--no-vocal-separation",
        action="store_true",
        help="Hallo models: encode the audio as it is, without separating the vocals first "
        "(default: separate when the model folder has audio_separator/Kim_Vocal_2.onnx)",
    )
    g.add_argument(
        "--no-watermark",
        action="store_true",
        help="leave the frames unmarked: saying the video is synthetic is then YOUR "
        "responsibility (the file label stays)",
    )
    add_provenance_arguments(g)
    g.set_defaults(func=_cmd_generate)

    add_face_parser(sub)
    add_detect_parser(sub)
    for module in (cli_generate_many, cli_prepare, cli_train):  # subcommands in their own modules
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``emo`` command; return its exit code.

    Exit codes: 0 success, 1 an emo error (bad input, broken plugin, ...),
    2 bad usage, 130 interrupted (Ctrl-C), 143 terminated (SIGTERM), 129 hung up
    (SIGHUP). Whatever stops a command, its temporary files are removed.
    """
    from emo.interrupts import exit_code_for, stop_on_signals

    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        with stop_on_signals():
            code = int(args.func(args))
    except EMOError as exc:
        print(f"emo: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except Terminated as exc:
        print(f"emo: terminated by {exc.signal_name}", file=sys.stderr)
        return exit_code_for(exc.signum)
    except KeyboardInterrupt:
        print("emo: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
