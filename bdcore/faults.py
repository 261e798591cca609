"""Named fault points for crash tests: ``fault_point("checkpoint.between_files")`` does nothing
unless ``$BD_FAULT`` is ``NAME:N``, in which case the process SIGKILLs itself the N-th time it
reaches the point NAME (tests/test_kills.py, bench/chaos.py). SIGKILL, not an exception: nothing
in the process (``finally``, ``except``, atexit) gets to tidy up, as after an out-of-memory kill.

The variable is read once, at import, so a disabled point costs one comparison."""
from __future__ import annotations

import os
import signal
import sys

ENV = "BD_FAULT"

# Every point, so a chaos driver can pick one; a name here that no code reaches would never fire.
POINTS = (
    "weights.before_replace",  # a safetensors file written under its temporary name (runs.save_weights)
    "file.before_replace",  # a JSON or torch file written under its temporary name (runs.write_*_atomic)
    "checkpoint.between_files",  # an epoch's weights saved, its optimiser/RNG state not yet
    "checkpoint.before_index",  # both epoch files saved, the index still names the previous epoch
    "checkpoint.before_cleanup",  # the index names the new epoch; older epoch files still there
    "stage.before_ledger",  # a stage's final weights saved, stages.json not yet updated
    "stage.before_clear",  # stages.json updated, the stage's per-epoch files not yet removed
    "store.commit",  # inside a run store transaction, its statements done, before COMMIT
)


def _target(spec: str) -> tuple[str, int] | None:
    name, _, count = spec.rpartition(":")
    if not spec:
        return None
    if name not in POINTS or not count.isdigit() or int(count) < 1:
        raise ValueError(f"{ENV}={spec!r}: expected NAME:N with N >= 1 and NAME one of {', '.join(POINTS)}")
    return name, int(count)


_TARGET = _target(os.environ.get(ENV, ""))
_hits = 0


def fault_point(name: str) -> None:
    """SIGKILL this process here if ``$BD_FAULT`` asks for this point and this is its N-th visit."""
    global _hits
    if _TARGET is None or name != _TARGET[0]:
        return
    _hits += 1
    if _hits == _TARGET[1]:
        # the worker log is where a chaos driver learns which point killed the run
        print(f"fault point {name}: SIGKILL at visit {_hits}", file=sys.stderr, flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
