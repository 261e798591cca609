"""Embeddings and the unlabeled-set explorer: which samples (samples), a model's features
(features), 2-D / 3-D reductions (reduce), the on-disk cache (cache), opening runs (source), the
engine tying them together (engine), the analyses (analysis) and figures (figures)."""
from .cache import ArrayCache, cache_key
from .engine import (
    SETS,
    Embedding,
    embed,
    first_view_spec,
    outputs_of,
    prepare_first_view,
    sample_set,
    set_outputs,
)
from .features import REPRESENTATIONS, forward_outputs, softmax
from .reduce import METRICS, REDUCERS, ReduceParams, reduce, warm_up_umap
from .samples import SampleSet, SampleSpec, draw_samples
from .source import ExploreError, ExploreSession, RunChoice, checkpoint_stamps, explorable_runs

__all__ = ["REDUCERS", "REPRESENTATIONS", "METRICS", "SETS", "ArrayCache", "Embedding", "ExploreError",
           "ExploreSession", "ReduceParams", "RunChoice", "SampleSet", "SampleSpec", "cache_key",
           "checkpoint_stamps", "draw_samples", "embed", "explorable_runs", "first_view_spec",
           "forward_outputs", "outputs_of", "prepare_first_view", "reduce", "sample_set", "set_outputs",
           "softmax", "warm_up_umap"]
