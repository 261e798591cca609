"""The curation loop end to end: open a finished run, pick a transfer set from its teacher's soft
labels with a strategy, and relaunch the run on it. The child keeps every setting of its parent
but the unlabeled set, so its teacher comes from the cache (the parent's, not trained again),
and the transfer set's provenance names the parent, so the two can be compared."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from ..config import ExperimentConfig
from ..embeddings import ExploreSession, set_outputs, softmax
from ..embeddings.features import Progress
from ..errors import RunNotFoundError, UserError
from ..runs import RunDir, RunsRoot
from ..stage_names import TEACHER
from ..store import RunStore
from . import transfer_sets
from .strategies import check_strategy, select
from .transfer_sets import TransferSet, TransferSetError


def open_run(ref: str, store: RunStore | None = None) -> ExploreSession:
    """A run by its id in the run store, its folder's name under the runs root, or its folder."""
    store = store or RunStore()
    try:
        record = store.get(ref)
        if record.run_dir:
            return ExploreSession(Path(record.run_dir), record.id)
    except RunNotFoundError:
        pass  # not a run id of the store: a folder, perhaps
    for run in (store.root.run(ref), RunDir(ref)):
        if run.config_path.exists():
            return ExploreSession(run.path)
    raise TransferSetError(f"no run {ref!r}: give a run id (python -m bdcore jobs list) or a run folder")


def curate(session: ExploreSession, strategy: str, budget: int, name: str, role: str = TEACHER,
           seed: int = 0, progress: Progress | None = None) -> TransferSet:
    """Save the transfer set ``strategy`` picks from ``role``'s soft labels (T=1) over the run's
    unlabeled set, at most ``budget`` images, under ``name``."""
    transfer_sets.check_name(name)
    label = check_strategy(strategy).label  # both checked before the model runs over the whole set
    logits = set_outputs(session, role, "unlabeled", progress=progress)["logits"]
    rows = select(strategy, softmax(logits, 1.0), budget, seed)
    details = (f"{label}, {len(rows):,} of {len(logits):,} images "
               f"(budget {budget:,}, seed {seed})")
    return transfer_sets.save_from_run(session, rows, name, {
        "model": role, "how": "strategy", "strategy": strategy, "budget": budget, "seed": seed,
        "details": details})


def child_config(parent: ExperimentConfig, ts: TransferSet) -> ExperimentConfig:
    """The parent's settings with the transfer set as the unlabeled set (whole: no limit)."""
    return replace(parent, unlabeled=ts.spec, unlabeled_limit=None).validate()


def parent_config(ts: TransferSet, store: RunStore) -> ExperimentConfig:
    """The settings of the run ``ts`` was saved from, which its relaunch keeps."""
    ref = ts.provenance.get("run")
    if not ref:
        raise TransferSetError(f"transfer set {ts.name} was not saved from a run "
                               f"({ts.provenance.get('how')}): launch a run on it from the Launch page "
                               f"(unlabeled set {ts.spec})")
    try:
        return store.get(ref).config
    except RunNotFoundError:
        folder = store.root.run(ref)
        if folder.config_path.exists():
            return folder.config()
    raise TransferSetError(f"run {ref}, which transfer set {ts.name} was saved from, is gone: launch a "
                           f"run on {ts.spec} from the Launch page instead")


def parent_run(config: ExperimentConfig, root: RunsRoot | None = None) -> str | None:
    """The run a run's transfer set was saved from (its parent), or None."""
    if not transfer_sets.is_transfer_set(config.unlabeled):
        return None
    try:
        return transfer_sets.provenance(transfer_sets.name_of(config.unlabeled), root).get("run")
    except UserError:  # deleted since: the child still shows, without its parent
        return None
