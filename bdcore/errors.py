"""Errors the user causes, as distinct from bugs. The CLI prints a ``UserError`` as one line and
exits with status 2, the app shows it in an error box; any other exception is a bug and keeps its
traceback."""
from __future__ import annotations


def first_line(err: Exception) -> str:
    """The gist of a library's error for a one-line message: torch's state-dict errors run over
    many lines."""
    lines = str(err).strip().splitlines()
    return lines[0].rstrip(":. ") if lines else type(err).__name__


class UserError(Exception):
    """Bad input or a request that cannot be met; the message says what and what to do."""


class ConfigError(UserError, ValueError):
    """An invalid setting: an experiment config field, an option, an unknown name."""


class DataError(UserError, ValueError):
    """A dataset that cannot be used as asked (damaged files, no labels where labels are needed)."""


class RunNotFoundError(UserError, KeyError):
    """No run with the given id in the run store."""

    __str__ = Exception.__str__  # KeyError would quote the message


class TrainingDivergedError(UserError, ArithmeticError):
    """A stage whose loss or weights became NaN or infinite: its settings (learning rate,
    temperature) are too aggressive for the data; the stage and the run fail instead of training
    on garbage."""


class RunStateError(UserError, ValueError):
    """An action the run's current status does not allow (resume a running run, delete a queued one)."""


class StoreError(UserError):
    """A run store file or its folder that cannot be used (not a database, locked, disk full)."""
