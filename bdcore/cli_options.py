"""Command-line options generated from ExperimentConfig, so `run` and `jobs submit` take exactly
the config's fields, each documented by the field's own help text, on top of a ``--preset``."""
from __future__ import annotations

import argparse
from dataclasses import fields

from .config import ExperimentConfig
from .presets import DEFAULT_PRESET, PRESETS, preset_config


def _optional_int(text: str) -> int | None:
    return None if text.lower() in {"none", "all", ""} else int(text)


def add_config_options(parser: argparse.ArgumentParser) -> None:
    presets = "; ".join(f"{name}: {p.summary}" for name, p in PRESETS.items())
    parser.add_argument("--preset", choices=list(PRESETS), default=DEFAULT_PRESET,
                        help=f"starting settings, overridden by any option given: {presets} "
                             "(default: %(default)s)")
    defaults = ExperimentConfig()
    for f in fields(ExperimentConfig):
        flag = "--" + f.name.replace("_", "-")
        default = getattr(defaults, f.name)
        help_text = f.metadata["help"].replace("%", "%%")  # argparse formats help with %
        shown = " ".join(default) if isinstance(default, list) else "all" if default is None else default
        # SUPPRESS: only the options given appear in the namespace, so they override the preset
        kwargs = {"dest": f.name, "default": argparse.SUPPRESS, "help": f"{help_text} (paper: {shown})"}
        if isinstance(default, bool):
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, **kwargs)
        elif isinstance(default, list):
            parser.add_argument(flag.removesuffix("s"), nargs="+", metavar="K", **kwargs)
        elif default is None:
            parser.add_argument(flag, type=_optional_int, metavar="N", **kwargs)
        else:
            parser.add_argument(flag, type=type(default), **kwargs)


def config_from_args(args: argparse.Namespace) -> ExperimentConfig:
    """The preset's config with every option given on the command line on top."""
    given = {f.name: getattr(args, f.name) for f in fields(ExperimentConfig) if hasattr(args, f.name)}
    return preset_config(args.preset, **given)
