"""Where datasets come from, in the order they are tried: the project's data directory, known
system installs, torchvision's download when online, and last the bundled demo subset."""
from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from ..errors import DataError, UserError

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DEMO_DIR = PROJECT_ROOT / "assets" / "demo"
SYSTEM_DIRS = (Path("/usr/share/datasets"),)
DOWNLOAD_TIMEOUT_S = 20


class DatasetNotFoundError(UserError, FileNotFoundError):
    """No source holds the dataset; the message says what was expected and where it looked."""


class DataDirError(DataError):
    """``$BD_DATA_DIR`` (or ./data) is not a folder."""


def data_dir() -> Path:
    """The project's data directory: ``$BD_DATA_DIR``, default ``./data``. A file there is an
    error: every dataset would silently fall back to the demo subset or fail its download."""
    path = Path(os.environ.get("BD_DATA_DIR", "data")).expanduser()
    if path.exists() and not path.is_dir():
        raise DataDirError(f"data folder {path} is a file, not a folder: set BD_DATA_DIR to a folder "
                           "(or move the file away from ./data)")
    return path


def offline() -> bool:
    """``BD_OFFLINE=1`` skips download attempts (tests, air-gapped machines)."""
    return os.environ.get("BD_OFFLINE", "").lower() in {"1", "true", "yes"}


@dataclass(frozen=True)
class Location:
    """A folder that holds a dataset's files, and which kind of source it is."""
    path: Path
    kind: str  # "data dir", "torchvision layout", "system install", "download", "bundled demo subset"

    @property
    def demo_subset(self) -> bool:
        return self.kind == "bundled demo subset"

    def describe(self) -> str:
        return f"{self.kind}: {self.path}"


def find_file(folder: Path, name: str) -> Path | None:
    """``name`` or ``name.gz`` inside ``folder``, whichever exists."""
    for candidate in (folder / name, folder / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    return None


@contextmanager
def download_timeout(seconds: float = DOWNLOAD_TIMEOUT_S) -> Iterator[None]:
    """Bound each network wait so an offline machine fails fast instead of hanging."""
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(seconds)
    try:
        yield
    finally:
        socket.setdefaulttimeout(previous)


def not_found(name: str, expected: list[str], searched: list[Path],
              download_note: str) -> DatasetNotFoundError:
    # one line: the CLI prints errors as one line, the app in one box
    return DatasetNotFoundError(
        f"dataset {name!r} was not found. Expected files: {', '.join(expected)} (plain or .gz). "
        f"Folders searched: {', '.join(str(p) for p in searched)}. Download: {download_note}. "
        f"To fix: put the files in {data_dir() / name} or set BD_DATA_DIR to a folder that "
        f"holds {name}/ (for example ../shared/datasets)."
    )
