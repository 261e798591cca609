"""On-disk cache of computed arrays (one .npz per key, plus a JSON note of what it holds), so a
revisit with the same run, model, samples and params is instant. Keys hash every input; files
are written to a temp name and renamed, so a reader never sees half a file, and a key being
computed is locked across processes (``computing``), so it is computed once."""
from __future__ import annotations

import fcntl
import hashlib
import json
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np


def cache_key(**parts) -> str:
    """A short stable hash of JSON-able ``parts`` (run id, model role, sample spec, params...)."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:20]


class ArrayCache:
    def __init__(self, folder: Path):
        self.folder = Path(folder)

    def path(self, key: str) -> Path:
        return self.folder / f"{key}.npz"

    def load(self, key: str) -> dict[str, np.ndarray] | None:
        path = self.path(key)
        if not path.exists():
            return None
        try:
            with np.load(path, allow_pickle=False) as data:
                return {name: data[name] for name in data.files}
        except (OSError, ValueError, EOFError):  # damaged: recompute and overwrite
            return None

    def save(self, key: str, arrays: dict[str, np.ndarray], note: dict | None = None) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        tmp = self.folder / f"{key}.{os.getpid()}.tmp.npz"
        np.savez(tmp, **arrays)
        os.replace(tmp, self.path(key))
        if note is not None:
            (self.folder / f"{key}.json").write_text(json.dumps(note, indent=2, default=str))

    @contextmanager
    def computing(self, key: str, waiting: Callable[[], None]) -> Iterator[None]:
        """Hold ``key``'s lock while computing it. Whoever asks second (another session, the app
        while the run's worker prepares the first view) is told through ``waiting()``, blocks until
        the first is done, and should then ``load`` the result instead of computing it again."""
        self.folder.mkdir(parents=True, exist_ok=True)
        with open(self.folder / f"{key}.lock", "a") as handle:  # flock is released when it closes
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                waiting()
                fcntl.flock(handle, fcntl.LOCK_EX)
            yield

    def clear(self) -> int:
        """Delete every cached file; returns how many arrays files were removed."""
        removed = 0
        for path in self.folder.glob("*.npz"):
            path.unlink(missing_ok=True)
            path.with_suffix(".json").unlink(missing_ok=True)
            path.with_suffix(".lock").unlink(missing_ok=True)
            removed += 1
        return removed
