"""Studies: one launch of many runs. A study is a base config (a preset and fields on top) and
axes (config fields, each with the values to try); every combination is one run, queued through
the ordinary run queue, so runs share teachers through the cache and survive a restart. The study
itself is a small JSON file under the runs root naming its spec and its runs, which is all a
group cancel, resume or view needs."""
from __future__ import annotations

import itertools
import json
import re
import time
import tomllib
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

from . import jobs
from .config import ExperimentConfig
from .data.noise_set import NOISE
from .errors import ConfigError, RunNotFoundError, UserError
from .presets import DEFAULT_PRESET, PRESETS, preset_config
from .runs import RunsRoot, read_json, write_json_atomic
from .store import ACTIVE, RESUMABLE, RunRecord, RunStore

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
MAX_RUNS = 500  # a typo in an axis should not queue ten thousand runs
BASELINE = "baseline"  # the pseudo-axis of a study with baselines: "blind" and each baseline asked for
# What each baseline changes in a run, so that a blind figure can be read against it: no teacher at
# all (no blind stage, a fine-tune on the k labeled samples' hard labels alone), the labeled set's own
# train images with their labels unused (in-distribution upper bound), and random noise images (lower
# bound). Each reuses the run's stages.
BASELINES: dict[str, Callable[[ExperimentConfig], dict]] = {
    "no_teacher": lambda c: {"blind_epochs": 0, "hard_label_weight": 1.0,
                             # its logits are weighted 0: computed once rather than per batch
                             **({"finetune_fresh_teacher": False} if c.finetune_augment else {})},
    "in_distribution": lambda c: {"unlabeled": c.labeled, "unlabeled_limit": c.unlabeled_limit},
    "noise": lambda c: {"unlabeled": NOISE},
}


TYPES = {f.name: f.type for f in fields(ExperimentConfig)}  # a field's annotation, as text


def parse_value(name: str, text: str) -> object:
    """One command-line value of config field ``name``, typed as the field is."""
    kind = TYPES.get(name)
    if kind is None:
        raise ConfigError(f"{name!r} is not a config field (see python -m bdcore run --help)")
    try:
        if kind == "bool":
            if text.lower() not in ("true", "false"):
                raise ValueError
            return text.lower() == "true"
        if kind == "int":
            return int(text)
        if kind == "float":
            return float(text)
        if kind == "int | None":
            return None if text.lower() in ("none", "all") else int(text)
        if kind == "list[str]":
            return text.split("+")  # finetune_ks=10+all: one value of the axis, two fine-tunes
        return text
    except ValueError:
        raise ConfigError(f"{name}: {text!r} is not {kind}") from None


class StudyError(UserError):
    """A study that cannot be made, found or acted on; the message says why and what to do."""


@dataclass
class StudySpec:
    """What a study runs: ``preset`` + ``base`` fields, then every combination of ``axes``."""
    name: str
    preset: str = DEFAULT_PRESET
    base: dict = field(default_factory=dict)
    axes: dict[str, list] = field(default_factory=dict)
    baselines: list[str] = field(default_factory=list)  # keys of BASELINES, run beside every combination

    def validate(self) -> StudySpec:
        problems = []
        if not NAME.fullmatch(self.name or ""):
            problems.append(f"name {self.name!r}: use 1 to 64 letters, digits, '.', '_' or '-'")
        if self.preset not in PRESETS:
            problems.append(f"preset {self.preset!r}: choose one of {', '.join(PRESETS)}")
        for key in [*self.base, *self.axes]:
            if key not in TYPES:
                problems.append(f"{key!r} is not a config field (see python -m bdcore run --help)")
        for key, values in self.axes.items():
            if not isinstance(values, list) or not values:
                problems.append(f"axis {key} needs a non-empty list of values")
            elif len({json.dumps(v) for v in values}) != len(values):
                problems.append(f"axis {key} repeats a value")
            if key in self.base:
                problems.append(f"{key} is both in base and an axis: keep one")
        for name in self.baselines:
            if name not in BASELINES:
                problems.append(f"baseline {name!r}: choose from {', '.join(BASELINES)}")
        if problems:
            raise StudyError(f"study {self.name!r}: " + "; ".join(problems))
        if self.size() > MAX_RUNS:
            raise StudyError(f"study {self.name!r} would queue {self.size():,} runs (at most {MAX_RUNS}); "
                             "fewer axis values, or split it into several studies")
        return self

    def all_axes(self) -> dict[str, list]:
        """The axes, with the baseline pseudo-axis last when baselines are asked for."""
        return {**self.axes, **({BASELINE: ["blind", *self.baselines]} if self.baselines else {})}

    def size(self) -> int:
        n = 1
        for values in self.all_axes().values():
            n *= len(values)
        return n

    def points(self) -> list[dict]:
        """Each run's axis values, in the order the runs are queued (the last axis fastest)."""
        axes = self.all_axes()
        return [dict(zip(axes, combo, strict=True)) for combo in itertools.product(*axes.values())]

    def configs(self) -> list[ExperimentConfig]:
        """Every run's config, each validated: one bad combination refuses the whole study."""
        out = []
        for point in self.points():
            settings = {k: v for k, v in point.items() if k != BASELINE}
            try:
                config = preset_config(self.preset, **{**self.base, **settings})
                if point.get(BASELINE, "blind") != "blind":
                    config = replace(config, **BASELINES[point[BASELINE]](config))
                out.append(config.validate())
            except (ConfigError, TypeError) as err:
                raise StudyError(f"study {self.name!r}, run {point}: {err}") from err
        return out

    @classmethod
    def from_toml(cls, path: str | Path) -> StudySpec:
        """A study file: ``name``, optional ``preset``, a ``[base]`` table and an ``[axes]`` table
        of lists (docs/studies.md)."""
        try:
            data = tomllib.loads(Path(path).read_text())
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as err:
            raise StudyError(f"{path}: not a readable TOML study file ({err})") from err
        unknown = set(data) - {"name", "preset", "base", "axes", "baselines"}
        if unknown:
            raise StudyError(f"{path}: unknown keys {', '.join(sorted(unknown))} (a study file has name, "
                             "preset, baselines, [base] and [axes])")
        if not isinstance(data.get("base", {}), dict) or not isinstance(data.get("axes", {}), dict):
            raise StudyError(f"{path}: [base] and [axes] must be tables")
        return cls(str(data.get("name", Path(path).stem)), str(data.get("preset", DEFAULT_PRESET)),
                   dict(data.get("base", {})), dict(data.get("axes", {})),
                   list(data.get("baselines", []))).validate()


@dataclass
class Study:
    spec: StudySpec
    run_ids: list[str]  # in the order of spec.points()
    created: float = field(default_factory=time.time)

    def to_dict(self) -> dict:
        return {"spec": asdict(self.spec), "run_ids": self.run_ids, "created": self.created}


def _path(name: str, root: RunsRoot | None) -> Path:
    return (root or RunsRoot.default()).study(name)


def launch(spec: StudySpec, store: RunStore) -> Study:
    """Queue every run of the study (an identical run already queued, running or done is shared,
    not trained twice) and save the study."""
    spec.validate()
    path = _path(spec.name, store.root)
    if path.exists():
        raise StudyError(f"a study named {spec.name!r} exists already: choose another name, or delete it "
                         f"first (python -m bdcore study delete {spec.name})")
    configs = spec.configs()  # all validated before the first is queued
    study = Study(spec, [jobs.submit(store, c, start=False).run_id for c in configs])
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(path, study.to_dict())
    jobs.schedule(store)
    return study


def load(name: str, root: RunsRoot | None = None) -> Study:
    path = _path(name, root)
    if not path.exists():
        known = ", ".join(s.spec.name for s in list_studies(root)) or "none yet"
        raise StudyError(f"no study named {name!r} (studies: {known})")
    data = read_json(path, f"study {name}", f"delete {path} and launch the study again")
    try:
        return Study(StudySpec(**data["spec"]), list(data["run_ids"]), float(data["created"]))
    except (KeyError, TypeError, ValueError) as err:
        raise StudyError(f"{path} is damaged ({err}); delete it and launch the study again") from err


def list_studies(root: RunsRoot | None = None) -> list[Study]:
    folder = (root or RunsRoot.default()).study("x").parent
    found = []
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            found.append(load(path.stem, root))
        except UserError:
            continue
    return sorted(found, key=lambda s: s.created, reverse=True)


def records(study: Study, store: RunStore) -> list[tuple[dict, RunRecord | None]]:
    """Each run's axis values and its record (None: deleted from the store since)."""
    out = []
    for point, run_id in zip(study.spec.points(), study.run_ids, strict=True):
        try:
            out.append((point, store.get(run_id)))
        except RunNotFoundError:
            out.append((point, None))
    return out


def statuses(study: Study, store: RunStore) -> list[str]:
    """Each run's status, in the study's order ("deleted": removed from the store since)."""
    return [record.status if record else "deleted" for _point, record in records(study, store)]


def cancel(study: Study, store: RunStore) -> int:
    """Cancel every queued or running run of the study; how many were."""
    n = 0
    for _point, record in records(study, store):
        if record is not None and record.status in ACTIVE:
            try:
                jobs.cancel(store, record.id)
                n += 1
            except UserError:  # finished in the meantime
                continue
    return n


def resume(study: Study, store: RunStore) -> int:
    """Queue again every failed or cancelled run of the study (each from its last checkpoint)."""
    n = 0
    for _point, record in records(study, store):
        if record is not None and record.status in RESUMABLE:
            store.requeue(record.id)
            n += 1
    jobs.schedule(store)
    return n


def delete(name: str, root: RunsRoot | None = None) -> None:
    """Forget the study (its runs stay in the store, with their results)."""
    load(name, root)
    _path(name, root).unlink()
