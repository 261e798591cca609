"""Command-line options generated from ExperimentConfig, so `run` and `jobs submit` take exactly
the config's fields, each documented by the field's own help text."""
from __future__ import annotations

import argparse
from dataclasses import fields

from .config import ExperimentConfig


def _optional_int(text: str) -> int | None:
    return None if text.lower() in {"none", "all", ""} else int(text)


def add_config_options(parser: argparse.ArgumentParser) -> None:
    defaults = ExperimentConfig()
    for f in fields(ExperimentConfig):
        flag = "--" + f.name.replace("_", "-")
        default = getattr(defaults, f.name)
        help_text = f.metadata["help"].replace("%", "%%")  # argparse formats help with %
        kwargs = {"dest": f.name, "default": default, "help": f"{help_text} (default: %(default)s)"}
        if isinstance(default, bool):
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, **kwargs)
        elif isinstance(default, list):
            parser.add_argument(flag.removesuffix("s"), nargs="+", metavar="K", **kwargs)
        elif default is None:
            parser.add_argument(flag, type=_optional_int, metavar="N", **kwargs)
        else:
            parser.add_argument(flag, type=type(default), **kwargs)


def config_from_args(args: argparse.Namespace) -> ExperimentConfig:
    return ExperimentConfig(**{f.name: getattr(args, f.name) for f in fields(ExperimentConfig)})
