"""``python -m emo.train CONFIG``: the training entry point torchrun starts once per process.

``torchrun --nproc_per_node N -m emo.train CONFIG [--set KEY=VALUE ...]`` trains with
N processes (DistributedDataParallel); without torchrun it is one process.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the arguments and run the stage; returns the exit code (1 on an emo error)."""
    from emo.cli_train import add_arguments, run_train
    from emo.errors import EMOError

    parser = argparse.ArgumentParser(prog="python -m emo.train", description=__doc__)
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return run_train(args)
    except EMOError as exc:
        print(f"emo: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
