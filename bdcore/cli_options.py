"""Command-line options generated from ExperimentConfig, so `run` and `jobs submit` take exactly
the config's fields, each documented by the field's own help text, on top of a ``--preset``."""
from __future__ import annotations

import argparse
import tempfile
from dataclasses import fields
from pathlib import Path

from .config import ExperimentConfig
from .errors import ConfigError
from .presets import DEFAULT_PRESET, PRESETS, preset_config


def _optional_int(text: str) -> int | None:
    if text.lower() in {"none", "all", ""}:
        return None
    try:
        return int(text)
    except ValueError:  # argparse would name the function instead of saying what fits
        raise argparse.ArgumentTypeError(f"expected a whole number or 'all', got {text!r}") from None


def writable_folder(path: Path, what: str, fix: str) -> Path:
    """``path`` as a folder that exists and takes new files, or a ConfigError naming it and saying
    ``fix``. Checked before a command writes anything, so a bad folder leaves nothing half-made."""
    if path.exists() and not path.is_dir():
        raise ConfigError(f"{what} {path} is a file, not a folder; {fix}")
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):  # os.access says yes to root on read-only mounts
            pass
    except OSError as err:
        raise ConfigError(f"{what} {path} cannot be written ({err.strerror}); {fix}") from err
    return path


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
