"""One run across two CPU processes (gloo, started by torchrun): each rank takes its part of every
global batch, the two together train what one process trains, one run folder is written, a rank
killed mid-run is resumed by torchrun's restart, and its checkpoints load in one process; through
the queue (`jobs submit --procs 2`), a run of two processes is cancelled and resumed (slow); a set
streamed from disk is shared out between the ranks by litdata."""
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp
from safetensors.torch import load_file
from test_prepared import unlabeled_folder

from bdcore import distributed, jobs
from bdcore.cli import main
from bdcore.config import ExperimentConfig
from bdcore.data import load_dataset, load_pair
from bdcore.errors import ConfigError
from bdcore.experiment import run_experiment
from bdcore.models import build_model
from bdcore.runs import RunDir, RunsRoot, load_weights
from bdcore.stage_settings import StageSettings
from bdcore.store import RunStore
from bdcore.train import accuracy, epoch_batches, fit

ROOT = Path(__file__).resolve().parents[1]
# No augmentation or input noise: then two processes take exactly the steps one takes (their
# gradients averaged by DDP are the global batch's), and the weights agree to rounding.
SAME_STEPS = dict(teacher="mlp", student="mlp", teacher_epochs=2, blind_epochs=8, finetune_epochs=1,
                  finetune_ks=["5", "all"], finetune_min_steps=3, batch_size=64, device="cpu",
                  teacher_augment=False, teacher_input_noise=0.0, blind_augment=False, finetune_augment=False)
STAGES = ("teacher", "blind", "finetune-k5", "finetune-kall")


def options(config: dict) -> list[str]:
    out = []
    for name, value in config.items():
        flag = "--" + name.replace("_", "-")
        if isinstance(value, bool):
            out.append(flag if value else "--no-" + flag[2:])
        elif isinstance(value, list):
            out += [flag.removesuffix("s"), *value]
        else:
            out += [flag, str(value)]
    return out


def children(pid: int) -> dict[int, dict[str, str]]:
    """The processes whose parent is ``pid``, with their environment."""
    found = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == pid:
                environ = (stat.parent / "environ").read_bytes().split(b"\0")
                found[int(stat.parent.name)] = dict(e.decode().partition("=")[::2] for e in environ if e)
        except (OSError, ValueError, IndexError):
            continue  # gone meanwhile
    return found


def test_each_rank_takes_an_equal_part_of_every_global_batch(monkeypatch):
    x = torch.arange(10).view(10, 1, 1, 1).float()
    batches = lambda: [i.tolist() for i, _ in epoch_batches(x, 4, 3, torch.Generator().manual_seed(0))]  # noqa: E731
    one, parts = batches(), []
    monkeypatch.setattr(distributed, "world_size", lambda: 2)
    for rank in (0, 1):
        monkeypatch.setattr(distributed, "rank", lambda rank=rank: rank)
        parts.append(batches())
    assert [a + b for a, b in zip(*parts, strict=True)] == one  # the same rows, step by step
    assert [len(p) for p in parts[0]] == [2, 2, 1]


def test_a_stage_with_fewer_images_than_processes_is_refused_before_training(monkeypatch):
    monkeypatch.setattr(distributed, "is_distributed", lambda: True)
    monkeypatch.setattr(distributed, "world_size", lambda: 4)
    model, x = build_model("mlp", (1, 4, 4), 3), torch.zeros(3, 1, 4, 4)
    before = [p.clone() for p in model.parameters()]
    with pytest.raises(ConfigError, match="3 training image.*fewer than the 4 processes"):
        fit(model, x, lambda logits, index, batch: logits.sum(), x, torch.zeros(3, dtype=torch.long),
            StageSettings(epochs=1, lr=0.1), stage="finetune-k1", seed=0)
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))


def _streamed_epoch(rank: int, init: str, spec: str, out: dict) -> None:
    """One rank of a 2-process group: its batches of one epoch over a set streamed from disk."""
    torch.distributed.init_process_group("gloo", init_method=init, rank=rank, world_size=2)
    images = load_dataset(spec, "train").images
    batches = list(epoch_batches(images, 8, 7, torch.Generator().manual_seed(0)))
    out[rank] = [(index.tolist(), torch.equal(x, images[index])) for index, x in batches]
    torch.distributed.destroy_process_group()


def test_a_streamed_set_is_shared_out_by_litdata_between_ranks(tmp_path, monkeypatch):
    monkeypatch.setenv("BD_IN_MEMORY_MB", "0")  # stream from the prepared cache on disk
    spec = f"folder:{unlabeled_folder(tmp_path / 'u', n=50)}"
    assert len(load_dataset(spec, "train").images) == 50  # prepared once, before the ranks read it
    out = mp.get_context("spawn").Manager().dict()
    mp.spawn(_streamed_epoch, args=(f"file://{tmp_path / 'rendezvous'}", spec, out), nprocs=2)
    first, second = out[0], out[1]
    assert len(first) == len(second)  # in step: every training step waits for both ranks
    assert all(len(index) <= 4 and rows_right for index, rows_right in first + second)  # half of 8
    rows = [i for index, _ in first + second for i in index]
    assert len(rows) == len(set(rows)) >= 48  # each row at most once; litdata evens out the shares


def test_a_batch_that_does_not_divide_is_refused(tiny_data, capsys):
    with pytest.raises(Exception, match="does not divide among 2 processes"):
        distributed.check_batch(63, 2)
    assert main(["jobs", "submit", "--procs", "2", "--batch-size", "63"]) == 2
    assert "choose a multiple of 2" in capsys.readouterr().err


def test_two_processes_train_what_one_does_and_resume_after_a_rank_is_killed(tiny_data, tmp_path):
    config = ExperimentConfig(**SAME_STEPS)
    one = run_experiment(config, RunsRoot(tmp_path / "one"))

    root = RunsRoot(tmp_path / "two")
    launcher = subprocess.Popen(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
         "--max-restarts", "1", "-m", "bdcore", "run", *options(SAME_STEPS), "--json",
         "--runs-dir", str(root.path)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        # kill rank 1 (which writes nothing) once the blind stage is under way
        killed, end = False, time.time() + 60
        while not killed and launcher.poll() is None and time.time() < end:
            runs = root.run_folders()
            if runs and sum(1 for m in runs[0].metrics() if m["stage"] == "blind") >= 2:
                for pid, env in children(launcher.pid).items():
                    if env.get("RANK") == "1":
                        os.kill(pid, signal.SIGKILL)
                        killed = True
            time.sleep(0.01)
        out, err = launcher.communicate(timeout=90)
    finally:  # torchrun and its workers, whatever happened
        with contextlib.suppress(ProcessLookupError):
            os.killpg(launcher.pid, signal.SIGKILL)
    assert killed, f"the run ended before a rank could be killed: {err[-2000:]}"
    assert launcher.returncode == 0, err[-2000:]
    two = json.loads(out.strip().splitlines()[-1])

    # the same accuracies, and weights equal to rounding
    assert abs(two["teacher_acc"] - one.teacher_acc) <= 0.02
    assert abs(two["blind_acc"] - one.blind_acc) <= 0.02
    for k, acc in one.finetune_acc.items():
        assert abs(two["finetune_acc"][k] - acc) <= 0.02
    [run] = root.run_folders()  # one folder, through the restart
    assert str(run.path) == two["run_dir"]
    for stage in STAGES:
        a, b = load_file(str(RunDir(one.run_dir).checkpoint(stage))), load_file(str(run.checkpoint(stage)))
        assert all(torch.allclose(a[name], b[name], atol=1e-3) for name in a), stage
    assert not list(run.path.glob("*.e*.*")) and not list(run.path.glob("*.tmp"))
    epochs = [(m["stage"], m["epoch"]) for m in run.metrics()]
    assert epochs == [(m["stage"], m["epoch"]) for m in RunDir(one.run_dir).metrics()]

    # written by two processes, loaded by one: the weights, and the whole run resumed
    data = load_pair(config.pair_spec())
    model = load_weights(build_model("mlp", data.input_shape, data.num_classes), run.checkpoint("blind"))
    assert accuracy(model, data.test_x, data.test_y) == pytest.approx(two["blind_acc"], abs=0.011)
    again = run_experiment(config, root, run=run)
    assert (again.teacher_acc, again.blind_acc) == (two["teacher_acc"], two["blind_acc"])


def wait_for(predicate, timeout: float):
    end = time.time() + timeout
    while time.time() < end:
        if value := predicate():
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout}s")


@pytest.mark.slow  # about 50 s: two torchrun starts
def test_a_queued_run_of_two_processes_is_cancelled_and_resumed(tiny_data, monkeypatch):
    monkeypatch.setenv("BD_MAX_JOBS", "1")
    store = RunStore()
    config = ExperimentConfig(**{**SAME_STEPS, "blind_epochs": 150, "finetune_ks": ["all"]})
    run_id = jobs.submit(store, config, procs=2).run_id
    assert store.get(run_id).procs == 2
    wait_for(lambda: sum(e["stage"] == "blind" for e in store.epochs([run_id])) >= 2, 90)
    launcher = store.get(run_id).pid  # torchrun, which started both workers
    assert "torch.distributed.run" in Path(f"/proc/{launcher}/cmdline").read_text()
    assert jobs.cancel(store, run_id) == "cancelling"
    record = wait_for(lambda: (r := store.get(run_id)).status != "running" and r, 30)
    assert record.status == "cancelled", record.error
    wait_for(lambda: not jobs.process_alive(launcher, run_id), 30)

    jobs.resume(store, run_id)
    record = wait_for(lambda: (r := store.get(run_id)).status not in ("queued", "running") and r, 150)
    assert record.status == "succeeded", record.error
    blind = [e["epoch"] for e in store.epochs([run_id]) if e["stage"] == "blind"]
    assert blind == list(range(1, 151))  # each epoch once: only rank 0 reports
    assert [r.path for r in store.root.run_folders()] == [Path(record.run_dir)]
