"""The blind stage's replay: which epochs a run keeps, that a real run keeps them, and that the
replayed embeddings share one layout (started from the previous epoch, rotated onto it)."""
import numpy as np
import pytest
import torch

from bdcore.checkpoints import snapshot_epochs
from bdcore.config import ExperimentConfig
from bdcore.embeddings import ExploreError, ExploreSession, ReduceParams, SampleSpec, reduce
from bdcore.embeddings.replay import align, replay, replay_epochs
from bdcore.experiment import run_experiment
from bdcore.models import build_model
from bdcore.runs import RunDir, save_weights
from bdcore.store import RunStore

from embeddings_helpers import make_finished_run

FAST = ReduceParams(method="tsne", n_iter=60, perplexity=10)


def test_a_handful_of_epochs_spread_over_the_stage_incl_first_and_last():
    assert snapshot_epochs(3) == [1, 2, 3]
    assert snapshot_epochs(15) == [1, 4, 7, 9, 12, 15]
    assert snapshot_epochs(100, keep=4) == [1, 34, 67, 100]


def test_a_run_keeps_its_blind_stage_snapshots_and_no_others(tiny_data):
    config = ExperimentConfig(teacher="mlp", student="mlp", teacher_epochs=1, blind_epochs=3,
                              finetune_epochs=1, finetune_ks=["all"], batch_size=64, device="cpu")
    run = RunDir(run_experiment(config).run_dir)
    assert run.snapshot_epochs("blind") == [1, 2, 3]
    assert run.snapshot_epochs("teacher") == [] and run.snapshot_epochs("finetune-kall") == []
    last = run.snapshot("blind", 3).read_bytes()
    assert last == run.checkpoint("blind").read_bytes()  # the last epoch is the stage's result


@pytest.fixture
def session(tiny_data):
    run_id, path = make_finished_run(RunStore())
    run = RunDir(path)
    run.snapshot("blind", 1).parent.mkdir()
    for epoch in (1, 3, 5):
        torch.manual_seed(epoch)
        save_weights(build_model("mlp", (1, 28, 28), 10), run.snapshot("blind", epoch))
    return ExploreSession(path, run_id)


def test_replay_gives_one_embedding_per_kept_epoch_of_the_same_samples(session):
    spec = SampleSpec(40, 60, seed=1)
    frames = replay(session, spec, FAST)
    assert replay_epochs(session) == [1, 3, 5]
    assert [f.role for f in frames] == ["blind@e1", "blind@e3", "blind@e5"]
    assert all(f.coords.shape == (100, 2) and not f.cached for f in frames)
    assert all(np.array_equal(f.index, frames[0].index) for f in frames)
    assert not np.allclose(frames[0].logits, frames[2].logits)  # each epoch's own model
    again = replay(session, spec, FAST)
    assert all(f.cached for f in again)
    assert all(np.array_equal(a.coords, b.coords) for a, b in zip(frames, again, strict=True))


def test_each_epoch_starts_from_the_previous_layout_so_points_stay_put(session):
    """The replayed layouts move far less between epochs than independent ones would."""
    spec = SampleSpec(40, 60, seed=2)
    frames = replay(session, spec, FAST)

    def spread(a: np.ndarray) -> float:
        return float(np.linalg.norm(a - a.mean(axis=0), axis=1).mean())

    moved = np.linalg.norm(frames[2].coords - frames[1].coords, axis=1).mean() / spread(frames[1].coords)
    other_seed = reduce(np.random.default_rng(0).normal(size=(100, 20)).astype(np.float32), FAST)
    unrelated = np.linalg.norm(align(other_seed, frames[1].coords) - frames[1].coords, axis=1).mean()
    assert moved < 0.5 * unrelated / spread(frames[1].coords)


def test_procrustes_undoes_rotation_reflection_scale_and_shift():
    ref = np.random.default_rng(3).normal(size=(50, 2))
    turn = np.array([[0.0, -1.0], [-1.0, 0.0]])  # a reflection
    moved = ref @ turn * 3.0 + 7.0
    assert np.allclose(align(moved, ref), ref, atol=1e-5)


def test_a_run_without_snapshots_says_so(tiny_data):
    run_id, path = make_finished_run(RunStore())
    with pytest.raises(ExploreError, match="kept no blind-stage snapshots"):
        replay(ExploreSession(path, run_id), SampleSpec(10, 10), FAST)
