"""``python -m emo.generate_many JOBS -o OUT_DIR``: the entry point torchrun starts once per process.

``torchrun --nproc_per_node N -m emo.generate_many JOBS -o OUT_DIR`` shares the jobs
out over N processes (one GPU each); ``--nnodes M`` and a rendezvous address spread
them over machines that share ``OUT_DIR``. Without torchrun it is one process, the
same as ``emo generate-many``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the arguments and run the job list; returns the exit code (see ``emo generate-many``)."""
    from emo.cli import EXIT_ERROR, EXIT_INTERRUPTED
    from emo.cli_generate_many import add_arguments, run_generate_many
    from emo.errors import EMOError, Terminated
    from emo.interrupts import exit_code_for, stop_on_signals

    parser = argparse.ArgumentParser(prog="python -m emo.generate_many", description=__doc__)
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        with stop_on_signals():
            return run_generate_many(args)
    except EMOError as exc:
        print(f"emo: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except Terminated as exc:
        print(f"emo: terminated by {exc.signal_name}", file=sys.stderr)
        return exit_code_for(exc.signum)
    except KeyboardInterrupt:
        print("emo: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
