"""The embedding engine: samples -> a model's features or logits -> 2-D / 3-D coordinates, and a
model's predictions over whole sets, all cached on disk by run, model, samples and params."""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import torch

from ..errors import ConfigError
from ..stage_names import TEACHER
from .cache import cache_key
from .features import REPRESENTATIONS, Progress, forward_outputs
from .reduce import ReduceParams, reduce
from .samples import SampleSet, SampleSpec, draw_samples
from .source import ExploreSession

# bump when cached results would change meaning (3: approximate neighbours from 20,000 points)
ENGINE_VERSION = 3
SETS = ("labeled", "unlabeled")  # labeled: the labeled set's test split


def _quiet(_fraction: float, _message: str) -> None:
    return None


@dataclass
class Embedding:
    """One computed embedding; row i is a sample of ``SETS[is_unlabeled[i]]`` at ``index[i]``."""
    coords: np.ndarray  # (n, dims) float32
    is_unlabeled: np.ndarray  # (n,) bool
    index: np.ndarray  # (n,) position in its set
    true_label: np.ndarray  # (n,) class in its own set's classes, -1 where unknown
    logits: np.ndarray  # (n, labeled classes) of the model that was embedded
    role: str
    representation: str
    spec: SampleSpec
    params: ReduceParams
    seconds: dict[str, float] = field(default_factory=dict)
    cached: bool = False

    def arrays(self) -> dict[str, np.ndarray]:
        return {"coords": self.coords, "is_unlabeled": self.is_unlabeled, "index": self.index,
                "true_label": self.true_label, "logits": self.logits}


def sample_set(session: ExploreSession, spec: SampleSpec) -> SampleSet:
    data = session.data
    labels = None if data.unlabeled_labels is None else data.unlabeled_labels.numpy()
    return draw_samples(data.test_y.numpy(), labels, len(data.unlabeled_x), spec)


def sample_outputs(session: ExploreSession, role: str, samples: SampleSet,
                   progress: Progress = _quiet) -> tuple[np.ndarray, np.ndarray]:
    """(features, logits) of the labeled samples followed by the unlabeled ones."""
    data = session.data
    x = torch.cat([data.test_x[torch.as_tensor(samples.labeled, dtype=torch.long)],
                   data.unlabeled_x[torch.as_tensor(samples.unlabeled, dtype=torch.long)]])
    return forward_outputs(session.model(role), x, amp=session.config.amp, progress=progress)


def embed(session: ExploreSession, role: str = TEACHER, spec: SampleSpec = SampleSpec(),
          params: ReduceParams = ReduceParams(), representation: str = "features",
          progress: Progress | None = None) -> Embedding:
    """The joint embedding of ``spec``'s samples in ``role``'s feature (or logit) space."""
    if representation not in REPRESENTATIONS:
        raise ConfigError(f"representation: choose one of {', '.join(REPRESENTATIONS)}")
    params.validate()
    progress = progress or _quiet
    key = cache_key(v=ENGINE_VERSION, kind="embedding", model=session.identity(role),
                    spec=spec.to_dict(), params=params.to_dict(), representation=representation)
    hit = session.cache.load(key)
    if hit is None:
        with session.cache.computing(key, lambda: progress(0.0, "another session or the run's worker is "
                                                  "computing this embedding; shown as soon as it is ready")):
            hit = session.cache.load(key)  # it may have been computed while this one waited
            if hit is None:
                return _compute(session, role, spec, params, representation, key, progress)
    progress(1.0, "loaded from cache")
    return Embedding(**hit, role=role, representation=representation, spec=spec, params=params, cached=True)


def _compute(session: ExploreSession, role: str, spec: SampleSpec, params: ReduceParams,
             representation: str, key: str, progress: Progress) -> Embedding:
    seconds = {}
    start = time.perf_counter()
    samples = sample_set(session, spec)
    feats, logits = sample_outputs(session, role, samples,
                                   lambda f, m: progress(0.1 * f, f"{role} {m}"))
    seconds["features"] = time.perf_counter() - start
    start = time.perf_counter()
    coords = reduce(feats if representation == "features" else logits, params,
                    lambda f, m: progress(0.1 + 0.9 * f, m))
    seconds["reduce"] = time.perf_counter() - start
    labels = [session.data.test_y.numpy()[samples.labeled]]
    if session.data.unlabeled_labels is None:
        labels.append(np.full(len(samples.unlabeled), -1))
    else:
        labels.append(session.data.unlabeled_labels.numpy()[samples.unlabeled])
    result = Embedding(
        coords=coords, is_unlabeled=np.r_[np.zeros(len(samples.labeled), bool),
                                          np.ones(len(samples.unlabeled), bool)],
        index=np.r_[samples.labeled, samples.unlabeled].astype(np.int64),
        true_label=np.concatenate(labels).astype(np.int64), logits=logits, role=role,
        representation=representation, spec=spec, params=params, seconds=seconds)
    session.cache.save(key, result.arrays(), {"run": session.run_id, "role": role,
                                              "spec": spec.to_dict(), "params": params.to_dict(),
                                              "representation": representation, "seconds": seconds})
    return result


def first_view_spec(session: ExploreSession) -> SampleSpec:
    """The samples the Embeddings page shows first: ``SampleSpec``'s counts, or all of a smaller set."""
    default = SampleSpec()
    return SampleSpec(min(default.n_labeled, len(session.data.test_y)),
                      min(default.n_unlabeled, len(session.data.unlabeled_x)), default.seed)


def prepare_first_view(session: ExploreSession, progress: Progress | None = None) -> Embedding:
    """Compute the Embeddings page's first view of a run (the teacher, its default samples and
    settings) into the run's cache, so a class opening the page once the run is done loads it
    instead of waiting for a t-SNE."""
    return embed(session, TEACHER, first_view_spec(session), ReduceParams(), REPRESENTATIONS[0], progress)


def set_outputs(session: ExploreSession, role: str, which: str, features: bool = False,
                progress: Progress | None = None) -> dict[str, np.ndarray]:
    """``role``'s logits (and, with ``features``, float16 penultimate features) over a whole set:
    ``labeled`` (the test split) or ``unlabeled``. Cached on disk."""
    if which not in SETS:
        raise ConfigError(f"which: choose one of {', '.join(SETS)}")
    key = cache_key(v=ENGINE_VERSION, kind="set", model=session.identity(role), which=which,
                    features=features)
    hit = session.cache.load(key)
    if hit is not None:
        return hit
    x = session.data.test_x if which == "labeled" else session.data.unlabeled_x
    feats, logits = forward_outputs(session.model(role), x, amp=session.config.amp,
                                    progress=lambda f, m: (progress or _quiet)(f, f"{role} {m}"))
    arrays = {"logits": logits}
    if features:
        arrays["features"] = feats.astype(np.float16)
    session.cache.save(key, arrays)
    return arrays


def outputs_of(session: ExploreSession, role: str, which: str,
               index: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(features, logits) of a few samples of one set, computed now (not cached)."""
    x = session.data.test_x if which == "labeled" else session.data.unlabeled_x
    return forward_outputs(session.model(role), x[torch.as_tensor(np.atleast_1d(index), dtype=torch.long)],
                           amp=session.config.amp)
