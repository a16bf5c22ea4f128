"""``emo train CONFIG``: run one training stage (many processes: ``torchrun -m emo.train CONFIG``)."""

from __future__ import annotations

import argparse
import logging
import os
from collections.abc import Sequence
from typing import Any

from emo.configuration import parse_key_values

__all__ = ["add_arguments", "parse_overrides", "register", "run_train"]


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The arguments ``emo train`` and ``python -m emo.train`` share."""
    p.add_argument("config", help="stage config file (JSON), e.g. examples/training/stage1.json")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="replace a config value, e.g. --set training.max_steps=100 (JSON values; repeatable)",
    )
    p.add_argument("--stop-after", type=int, default=None, help="stop after this many steps in all")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``train`` subcommand to the ``emo`` parser."""
    p = sub.add_parser(
        "train",
        help="run one training stage from its config file (resumes automatically)",
        description="Train one EMO stage. For N processes (GPUs) use "
        "torchrun --nproc_per_node N -m emo.train CONFIG.",
    )
    add_arguments(p)
    p.set_defaults(func=run_train)


def parse_overrides(items: Sequence[str]) -> dict[str, Any]:
    """``["training.max_steps=10"]`` -> ``{"training.max_steps": 10}`` (values read as JSON)."""
    return parse_key_values(items, "--set")


def run_train(args: argparse.Namespace) -> int:
    """Run ``emo train`` with parsed arguments; returns the exit code."""
    from emo.training.settings import load_config
    from emo.training.trainer import train

    logging.basicConfig(level=logging.INFO, format="emo train: %(message)s")
    config = load_config(args.config, parse_overrides(args.set))
    result = train(config, stop_after=args.stop_after)
    if os.environ.get("RANK", "0") != "0":
        return 0  # rank 0 reports for all
    if result.pipeline_dir is not None:
        print(f"emo: trained {result.step} steps; pipeline saved to {result.pipeline_dir}")
    else:
        print(f"emo: stopped after {result.step} steps; checkpoint {result.checkpoint}")
    return 0
