"""``emo detect``: does a file carry emo's watermark, label and a valid C2PA manifest?

Exit status (the worst over all files): 0 every file is recognised as synthetic (the
watermark found, or a valid C2PA manifest saying a trained model made it) and none
is tampered; 1 some file shows neither (or an error stopped the command); 3 some
file carries a C2PA manifest that fails validation (changed after signing, or a
broken signature).
"""

from __future__ import annotations

import argparse
import json
from typing import Any

__all__ = ["EXIT_FOUND", "EXIT_NOT_FOUND", "EXIT_TAMPERED", "add_detect_parser", "run_detect"]

EXIT_FOUND = 0
EXIT_NOT_FOUND = 1
EXIT_TAMPERED = 3
_EXIT = {"synthetic": EXIT_FOUND, "unknown": EXIT_NOT_FOUND, "tampered": EXIT_TAMPERED}
_RANK = {EXIT_FOUND: 0, EXIT_NOT_FOUND: 1, EXIT_TAMPERED: 2}


def _manifest_json(report: Any) -> dict[str, Any] | None:
    if report is None:
        return None
    return {
        "available": report.available,
        "present": report.present,
        "valid": report.valid,
        "signature_valid": report.signature_valid,
        "trusted": report.trusted,
        "changed_after_signing": report.changed_after_signing,
        "state": report.state,
        "signer": report.signer,
        "issuer": report.issuer,
        "source_type": report.source_type,
        "claim_generator": report.claim_generator,
        "failures": list(report.failures),
        "emo": dict(report.emo),
        "error": report.error,
    }


def run_detect(args: argparse.Namespace) -> int:
    """Run ``emo detect`` with parsed arguments; see the module docstring for the exit status."""
    from emo.provenance.detect import detect
    from emo.provenance.watermark_key import load_watermark_key

    key = args.key
    if key is None:
        key = load_watermark_key(args.watermark_key_file) or "emo-provenance-v1"
    code = EXIT_FOUND
    for path in args.paths:
        result = detect(path, key=key, max_frames=args.max_frames, trust_anchors=args.trust_anchors)
        file_code = _EXIT[result.verdict]
        code = max(code, file_code, key=_RANK.__getitem__)
        if args.json:
            print(
                json.dumps(
                    {
                        "path": path,
                        "verdict": result.verdict,
                        "watermarked": result.watermarked,
                        "version": result.payload.version if result.payload else None,
                        "video_id": result.payload.video_id if result.payload else None,
                        "confidence": result.confidence,
                        "score": result.score,
                        "scale": result.scale,
                        "label": result.label,
                        "c2pa": _manifest_json(result.manifest),
                    }
                )
            )
        else:
            print(f"{path}: {result.verdict.upper()}")
            print("  " + result.summary().replace("\n", "\n  "))
    return code


def add_detect_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register the ``detect`` subcommand on the ``emo`` parser."""
    d = sub.add_parser(
        "detect",
        help="look for emo's watermark, label and C2PA manifest "
        "(exit 0: synthetic, 1: nothing found, 3: manifest fails validation)",
    )
    d.add_argument("paths", nargs="+", metavar="VIDEO", help="video, GIF, image or frames folder")
    d.add_argument("--json", action="store_true", help="one JSON object per file")
    d.add_argument("--key", default=None, help="watermark key as text (default: emo's public key)")
    d.add_argument(
        "--watermark-key-file",
        default=None,
        metavar="FILE",
        help="secret watermark key file (default: $EMO_WATERMARK_KEY, else emo's public key)",
    )
    d.add_argument(
        "--trust-anchors",
        default=None,
        metavar="PEM",
        help="CA certificates whose C2PA signatures count as trusted "
        "(default: $EMO_C2PA_TRUST_ANCHORS)",
    )
    d.add_argument("--max-frames", type=int, default=48, help="frames read per video")
    d.set_defaults(func=run_detect)
