"""The Ray job backend against a Ray head this module starts on this machine (2 CPUs): quick runs
through the same queue, one cancelled and one killed and resumed, the store the source of truth."""
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from bdcore import jobs
from bdcore.config import ExperimentConfig
from bdcore.errors import ConfigError
from bdcore.store import RunStore

ray = pytest.importorskip("ray")

from test_jobs import LONG, TINY, wait_for  # noqa: E402

from bdcore import ray_jobs  # noqa: E402  (needs ray)

RAY = str(Path(sys.executable).parent / "ray")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@ray.remote(num_cpus=2)
class CpuHolder:
    def ready(self) -> bool:
        return True


@pytest.fixture(scope="module")
def ray_head():
    """A one-node Ray cluster of 2 CPUs and no GPU, of this module's own: `ray start --block`,
    interrupted at the end, stops the processes it started and no other Ray on the machine."""
    temp = tempfile.mkdtemp(prefix="/tmp/bdray-")  # Ray's socket paths must stay short
    port = _free_port()
    # its own process group, to stop it whole; SIGINT handled even where a shell started the tests
    # in the background (which ignores SIGINT in them, and the ignoring is inherited)
    head = subprocess.Popen([RAY, "start", "--head", "--block", f"--port={port}", "--num-cpus=2",
                             "--num-gpus=0", "--include-dashboard=false", "--disable-usage-stats",
                             f"--temp-dir={temp}"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        wait_for(lambda: head.poll() is not None or _connected(f"127.0.0.1:{port}"), timeout=120, every=1.0)
        assert head.poll() is None, "ray start --head failed"
        yield f"127.0.0.1:{port}"
    finally:
        ray.shutdown()
        head.send_signal(signal.SIGINT)  # its exit handlers stop the cluster's processes
        try:
            head.wait(timeout=60)
        finally:
            try:  # whatever is left of its group (a worker of a run ended early)
                os.killpg(head.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            head.wait(timeout=60)
            shutil.rmtree(temp, ignore_errors=True)


def _connected(address: str) -> bool:
    """Whether this process could join the cluster (it stays joined, as the backend would)."""
    host, port = address.split(":")
    with socket.socket() as s:
        if s.connect_ex((host, int(port))) != 0:  # the head's GCS is not up yet
            return False
    try:
        ray.init(address=address, namespace=ray_jobs.NAMESPACE, log_to_driver=False,
                 logging_level="warning", configure_logging=False)
    except (ConnectionError, RuntimeError):
        return False
    return True


@pytest.fixture
def store(tiny_data, isolated_env, monkeypatch, ray_head):
    monkeypatch.setenv("BD_JOBS_BACKEND", "ray")
    monkeypatch.setenv("RAY_ADDRESS", ray_head)
    return RunStore()


def test_three_runs_on_ray_one_cancelled_one_killed_and_resumed(store):
    done = jobs.submit(store, ExperimentConfig(**TINY)).run_id
    cancelled = jobs.submit(store, ExperimentConfig(**LONG)).run_id
    killed = jobs.submit(store, ExperimentConfig(**{**LONG, "blind_epochs": 40, "seed": 1})).run_id

    # the cluster has 2 CPUs and each run asks for 1: the third waits there, and says so
    waiting = store.get(killed)
    assert waiting.status == "running" and waiting.pid is None and "waiting" in waiting.message
    assert ray_jobs.RayBackend().alive(waiting)

    record = wait_for(lambda: (r := store.get(done)).status not in ("queued", "running") and r, timeout=120)
    assert record.status == "succeeded", record.error
    assert [e["stage"] for e in store.epochs([done])] == ["teacher", "blind", "finetune-kall"]
    assert (Path(record.run_dir) / "final.json").exists()
    assert "succeeded" in store.root.worker_log(done).read_text()  # the worker's log, as locally

    wait_for(lambda: any(e["stage"] == "blind" for e in store.epochs([cancelled])), timeout=120)
    assert jobs.cancel(store, cancelled) == "cancelling"
    record = wait_for(lambda: (r := store.get(cancelled)).status != "running" and r, timeout=30)
    assert record.status == "cancelled"
    assert (Path(record.run_dir) / "teacher.safetensors").exists()  # its finished stage is kept

    wait_for(lambda: sum(e["stage"] == "blind" for e in store.epochs([killed])) >= 3, timeout=120)
    os.kill(store.get(killed).pid, signal.SIGKILL)  # one node: the worker's pid is this machine's
    wait_for(lambda: jobs.reap(store) == [killed] or store.get(killed).status == "failed", timeout=30)
    assert "resume" in store.get(killed).error
    jobs.resume(store, killed)
    record = wait_for(lambda: (r := store.get(killed)).status not in ("queued", "running") and r, timeout=180)
    assert record.status == "succeeded", record.error
    assert [e["epoch"] for e in store.epochs([killed]) if e["stage"] == "blind"] == list(range(1, 41))
    assert record.attempts == 2
    # every launcher ended with its worker and handed its CPUs back
    wait_for(lambda: ray.available_resources().get("CPU", 0) == 2, timeout=30)


def test_a_run_waiting_for_resources_is_not_reaped_and_cancels_at_once(store, monkeypatch):
    ray_jobs.connect()
    holder = CpuHolder.remote()  # the cluster's 2 CPUs, taken
    ray.get(holder.ready.remote(), timeout=60)
    run_id = jobs.submit(store, ExperimentConfig(**TINY)).run_id
    monkeypatch.setattr(jobs, "START_GRACE_S", 0.0)  # however long it waits
    assert store.get(run_id).status == "running" and store.get(run_id).pid is None
    assert jobs.reap(store) == []  # waiting in the cluster is not a dead worker
    assert jobs.cancel(store, run_id) == "cancelled"
    assert store.get(run_id).status == "cancelled"
    record = store.get(run_id)
    wait_for(lambda: not ray_jobs.RayBackend().alive(record), timeout=30)
    ray.kill(holder)


def test_a_run_no_node_can_hold_fails_with_the_reason(store, monkeypatch):
    monkeypatch.setenv("BD_RAY_CPUS_PER_RUN", "64")
    record = store.get(jobs.submit(store, ExperimentConfig(**TINY)).run_id)
    assert record.status == "failed" and "no node of the Ray cluster has 64 CPUs" in record.error
    with pytest.raises(ConfigError, match="not cuda:1"):
        ray_jobs.check_fits(ExperimentConfig(**{**TINY, "device": "cuda:1"}), {"num_cpus": 1, "num_gpus": 1})


def test_resources_asked_per_run(store, monkeypatch):
    cpu = ExperimentConfig(**TINY)
    assert ray_jobs.resources(cpu, 1) == {"num_cpus": 1.0, "num_gpus": 0.0}
    auto = ExperimentConfig(**{**TINY, "device": "auto"})
    assert ray_jobs.resources(auto, 2)["num_gpus"] == 0.0  # this cluster has no GPU
    monkeypatch.setenv("BD_RAY_GPUS_PER_RUN", "0.25")
    cuda = ExperimentConfig(**{**TINY, "device": "cuda"})
    assert ray_jobs.resources(cuda, 1) == {"num_cpus": 1.0, "num_gpus": 0.25}  # 4 runs share a GPU
    assert ray_jobs.resources(cuda, 2) == {"num_cpus": 2.0, "num_gpus": 2.0}  # one whole GPU per process
    monkeypatch.setenv("BD_RAY_CPUS_PER_RUN", "many")
    with pytest.raises(ConfigError, match="BD_RAY_CPUS_PER_RUN"):
        ray_jobs.resources(cpu, 1)


@pytest.mark.slow  # about 45 s: a study of two runs through the script (make test-all)
def test_the_cluster_example_runs_a_study_unchanged(store, tmp_path):
    """examples/cluster/ray-study.sh, given only the cluster's address (and here the test's folders),
    launches a study on Ray, waits for it and prints its table."""
    fields = "\n".join(f"{k} = {v!r}".replace("'", '"') for k, v in TINY.items())
    study = tmp_path / "tiny.toml"
    study.write_text(f'name = "tiny"\npreset = "quick"\n\n[base]\n{fields}\n\n[axes]\nseed = [0, 1]\n')
    root = Path(__file__).resolve().parents[1]
    result = subprocess.run(["bash", str(root / "examples/cluster/ray-study.sh"), str(study)],
                            env={**os.environ, "BD_RAY_CPUS_PER_RUN": "1", "CHECK_EVERY_S": "1"},
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "study tiny: 2 succeeded" in result.stdout
    header, row = result.stdout.splitlines()[-2:]  # the table: both seeds in one row, mean +- std
    assert "blind acc mean" in header and row.split()[-1] == "2"  # 2 runs done


def test_the_runs_page_follows_and_cancels_a_ray_run(store):
    """The app, on the Ray backend, shows a run training on the cluster and cancels it."""
    from test_app import page

    # ten times LONG's blind epochs: on a busy machine the page's steps take longer than LONG's run
    run_id = jobs.submit(store, ExperimentConfig(**{**LONG, "blind_epochs": 4000})).run_id
    wait_for(lambda: any(e["stage"] == "blind" for e in store.epochs([run_id])), timeout=120)
    at = page("ui/runs.py").run()
    assert not at.exception
    frame = at.dataframe[0].value
    assert list(frame["status"]) == ["running"] and frame["stage"].item() == "blind"
    at.selectbox[0].set_value(run_id).run()
    at.button[0].click().run()  # Cancel
    assert not at.exception
    record = wait_for(lambda: (r := store.get(run_id)).status != "running" and r, timeout=30)
    assert record.status == "cancelled", (record.error, store.root.worker_log(run_id).read_text()[-3000:])
