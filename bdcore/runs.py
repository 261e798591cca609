"""Where everything of a run lives: the one place that spells file names.

``RunsRoot`` is the runs folder (``$BD_RUNS_DIR``, default ``./runs``): the run store, one folder
per run, the teacher cache, the workers' logs and the explorer's fallback cache. ``RunDir`` is one
run's folder: config.json, metrics.jsonl (one line per epoch), stages.json (the finished stages),
final.json, a safetensors checkpoint per finished stage, per-epoch checkpoints of the stage in
progress, and the explorer's cache. Writes are atomic or append-and-flush, so a crash loses at
most the line being written: a file is written under a temporary name (``temporary``: its name,
the writer's pid, ``.tmp``) and renamed over the final name, so a reader never sees half a file;
the temporary file a kill leaves is read by nobody and removed when the run resumes
(``remove_temp_files``)."""
from __future__ import annotations

import hashlib
import json
import os
import secrets
import socket
import time
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from .config import ExperimentConfig
from .errors import DataError, first_line
from .faults import fault_point
from .stage_names import sort_stages

WEIGHTS = ".safetensors"
EXPLORE_CACHE = "explore-cache"
TMP = ".tmp"  # suffix of a file being written; only the rename gives it its final name


def _writer() -> str:
    """This process as a temporary file's writer: host and pid, as the runs folder may be shared by
    the nodes of a cluster (the Ray backend), where a pid alone names another machine's process."""
    return f"{socket.gethostname().replace('.', '_').replace('-', '_')}-{os.getpid()}"


def temporary(path: Path) -> Path:
    """Where ``path`` is written before it is renamed into place. The writer's host and pid are in
    the name: two processes writing one file (two runs caching the same teacher) never share a
    temporary file, and a leftover whose writer is gone can be told from one being written."""
    return path.with_name(f"{path.name}.{_writer()}{TMP}")


def process_running(pid: int) -> bool:
    """Whether process ``pid`` exists (a leftover's writer may still be writing)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def remove_temp_files(folder: Path) -> None:
    """Delete the temporary files in ``folder`` that no running process of this machine is writing:
    left by a writer killed mid-write (or written by this process, which is not writing while it
    cleans). Another machine's are left to it."""
    host = _writer().rpartition("-")[0]
    for path in folder.glob(f"*{TMP}"):
        writer_host, _, pid = path.name.removesuffix(TMP).rpartition(".")[2].rpartition("-")
        if writer_host not in ("", host):
            continue
        if not pid.isdigit() or int(pid) == os.getpid() or not process_running(int(pid)):
            path.unlink(missing_ok=True)


def write_text_atomic(path: Path, text: str) -> None:
    tmp = temporary(path)
    tmp.write_text(text)
    fault_point("file.before_replace")
    os.replace(tmp, path)


def write_json_atomic(path: Path, data: dict) -> None:
    write_text_atomic(path, json.dumps(data, indent=2))


def save_state_atomic(state: dict, path: Path) -> None:
    """``torch.save`` under a temporary name, then renamed: a kill mid-write leaves no torn file."""
    tmp = temporary(path)
    torch.save(state, tmp)
    fault_point("file.before_replace")
    os.replace(tmp, path)


def save_weights(model: nn.Module, path: Path) -> None:
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    tmp = temporary(path)
    save_file(state, str(tmp))
    fault_point("weights.before_replace")
    os.replace(tmp, path)


def load_weights(model: nn.Module, path: Path) -> nn.Module:
    """Load safetensors weights (no pickle, so safe on untrusted files); a damaged file, or one
    of another model, is a ``DataError`` naming it."""
    try:
        model.load_state_dict(load_file(str(path)))
    except (OSError, SafetensorError, RuntimeError) as err:  # RuntimeError: names or shapes do not fit
        raise DataError(f"checkpoint {path} cannot be loaded ({first_line(err)}): it is damaged or from "
                        "other settings; delete it and its stage trains again") from err
    return model


def read_json(path: Path, what: str, fix: str) -> dict:
    """A JSON object a run wrote (``what`` it holds), or a ``DataError`` naming the file and saying
    ``fix``: a file edited by hand or damaged on disk (a kill cannot tear it: writes are atomic)."""
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise DataError(f"{path} ({what}) cannot be read ({err}); {fix}") from err
    if not isinstance(data, dict):
        raise DataError(f"{path} ({what}) is not a JSON object; {fix}")
    return data


class RunsRoot:
    """The runs folder and every path in it that is not inside one run's folder."""

    def __init__(self, path: str | Path):
        self.path = Path(path).expanduser()

    @classmethod
    def default(cls) -> RunsRoot:
        """``$BD_RUNS_DIR``, default ``./runs``."""
        return cls(os.environ.get("BD_RUNS_DIR", "runs"))

    @classmethod
    def holding(cls, store_path: str | Path) -> RunsRoot:
        """The runs folder of a run store file: the folder it lies in."""
        return cls(Path(store_path).parent)

    @property
    def store_path(self) -> Path:
        return self.path / "runs.db"

    def run(self, name: str) -> RunDir:
        return RunDir(self.path / name)

    def run_folders(self) -> list[RunDir]:
        """Every run folder (one holding a config.json), newest name first."""
        if not self.path.is_dir():
            return []
        found = (RunDir(p.parent) for p in self.path.glob(f"*/{RunDir.CONFIG}"))
        return sorted(found, key=lambda r: r.path.name, reverse=True)

    def teacher_weights(self, key: str) -> Path:
        """A cached teacher's checkpoint (beside ``teacher_record``)."""
        return self.path / "teachers" / key / f"teacher{WEIGHTS}"

    def teacher_record(self, key: str) -> Path:
        """A cached teacher's accuracy and epochs, written after its checkpoint."""
        return self.path / "teachers" / key / "teacher.json"

    def worker_log(self, run_id: str) -> Path:
        return self.path / "logs" / f"{run_id}.log"

    def explore_cache(self, run_name: str) -> Path:
        """Where the explorer caches a run's arrays when the run's own folder is read-only."""
        return self.path / EXPLORE_CACHE / run_name

    @property
    def transfer_sets(self) -> Path:
        """The folder of saved transfer sets (bdcore/curation/transfer_sets.py), one folder each."""
        return self.path / "transfer_sets"

    def transfer_set(self, name: str) -> Path:
        """One saved transfer set's folder: its manifest and the indices it keeps."""
        return self.transfer_sets / name

    def study(self, name: str) -> Path:
        """A study's file: its spec and the ids of its runs (bdcore/studies.py)."""
        return self.path / "studies" / f"{name}.json"


class RunDir:
    CONFIG = "config.json"

    def __init__(self, path: str | Path):
        self.path = Path(path)

    @classmethod
    def create(cls, config: ExperimentConfig, root: RunsRoot | None = None,
               name: str | None = None) -> RunDir:
        """A new run folder holding config.json; named after the time and pair unless ``name``.
        Started by torchrun, the name ends with a tag of torchrun's job id and the config instead
        of a random one: when torchrun restarts the processes, they find the folder of their
        first start and resume it (docs/distributed.md)."""
        root = root or RunsRoot.default()
        if name is None:
            job = os.environ.get("TORCHELASTIC_RUN_ID")
            if job == "none":  # torchrun without --standalone or --rdzv-id: no id of this job to find
                job = None
            tag = secrets.token_hex(3) if job is None else \
                "torchrun-" + hashlib.sha256(f"{job}\n{config.to_json()}".encode()).hexdigest()[:12]
            earlier = sorted(root.path.glob(f"*-{tag}")) if job is not None else []
            stamp = time.strftime("%Y%m%d-%H%M%S")
            name = f"{stamp}-{config.labeled}-{config.unlabeled}-{config.teacher}-{config.student}"
            name = earlier[0].name if earlier else f"{name.replace(':', '_').replace('/', '_')}-{tag}"
        run = root.run(name)
        run.path.mkdir(parents=True, exist_ok=True)
        write_text_atomic(run.config_path, config.to_json())  # run_folders() lists it at once
        return run

    @property
    def config_path(self) -> Path:
        return self.path / self.CONFIG

    def config(self) -> ExperimentConfig:
        return ExperimentConfig.load(self.config_path)

    @property
    def metrics_path(self) -> Path:
        return self.path / "metrics.jsonl"

    def log(self, record: dict) -> None:
        with open(self.metrics_path, "a") as f:
            f.write(json.dumps(record) + "\n")
            f.flush()
            os.fsync(f.fileno())

    def metrics(self) -> list[dict]:
        """One record per (stage, epoch), the latest written: a torn last line from a crash is
        skipped, and an epoch logged again after a resume replaces the earlier line."""
        if not self.metrics_path.exists():
            return []
        records: dict[tuple, dict] = {}
        for number, line in enumerate(self.metrics_path.read_text().splitlines(), start=1):
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue
            if not (isinstance(record, dict) and "stage" in record and "epoch" in record):
                raise DataError(f"{self.metrics_path}, line {number}, is not an epoch record (it was "
                                "edited by hand?); remove that line")
            records[(record["stage"], record["epoch"])] = record
        return list(records.values())

    @property
    def ledger_path(self) -> Path:
        """stages.json: each finished stage's accuracy and seconds."""
        return self.path / "stages.json"

    def checkpoint(self, stage: str) -> Path:
        """The final weights of a finished stage."""
        return self.path / f"{stage}{WEIGHTS}"

    def checkpoint_stages(self) -> list[str]:
        """The stages whose final checkpoint exists, in training order (per-epoch files excluded)."""
        return sort_stages(p.name.removesuffix(WEIGHTS) for p in self.path.glob(f"*{WEIGHTS}"))

    def epoch_files(self, stage: str, epoch: int) -> tuple[Path, Path]:
        """A stage's per-epoch checkpoint: weights (safetensors) and the rest of its training
        state (a weights-only torch file)."""
        base = f"{stage}.e{epoch}"
        return self.path / f"{base}{WEIGHTS}", self.path / f"{base}.state.pt"

    def epoch_files_except(self, stage: str, keep: int) -> list[Path]:
        """A stage's per-epoch checkpoint files of every epoch but ``keep``."""
        prefix = f"{stage}.e"
        found = []
        for path in self.path.glob(f"{prefix}*.*"):
            epoch = path.name.removeprefix(prefix).split(".")[0]
            if epoch.isdigit() and int(epoch) != keep:
                found.append(path)
        return found

    def snapshot(self, stage: str, epoch: int) -> Path:
        """The weights a stage had after ``epoch``, kept for replay (unlike the per-epoch
        checkpoints, which a stage removes as it goes)."""
        return self.path / "snapshots" / f"{stage}.e{epoch}{WEIGHTS}"

    def snapshot_epochs(self, stage: str) -> list[int]:
        """The epochs of ``stage`` with a kept snapshot, in order."""
        prefix, found = f"{stage}.e", []
        for path in (self.path / "snapshots").glob(f"{prefix}*{WEIGHTS}"):
            epoch = path.name.removeprefix(prefix).removesuffix(WEIGHTS)
            if epoch.isdigit():
                found.append(int(epoch))
        return sorted(found)

    def epoch_index(self, stage: str) -> Path:
        """The small JSON naming a stage's last saved epoch; replaced atomically last."""
        return self.path / f"{stage}.last.json"

    @property
    def manifest_path(self) -> Path:
        """manifest.json: code and library versions, device, data fingerprints (bdcore/manifest.py)."""
        return self.path / "manifest.json"

    @property
    def final_path(self) -> Path:
        return self.path / "final.json"

    def write_final(self, summary: dict) -> None:
        write_json_atomic(self.final_path, summary)

    def final(self) -> dict | None:
        return json.loads(self.final_path.read_text()) if self.final_path.exists() else None

    @property
    def explore_cache(self) -> Path:
        return self.path / EXPLORE_CACHE
