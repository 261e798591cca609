"""The Ray job backend (``BD_JOBS_BACKEND=ray``, cluster at ``$RAY_ADDRESS``): queued runs go to a Ray
cluster, which places each where its resources are free and holds them while it trains, instead of
local worker processes. The only module that imports ray; the local backend never loads it.

- **A run** is one detached actor, named after the run and its attempt, asking Ray for the run's
  CPUs and GPUs. It starts the same worker as on one machine (``python -m bdcore.worker``; torchrun
  for a run of several processes) on its node and lives exactly as long as that worker.
- **How results travel back**: every node mounts the runs folder at the same path (NFS or the
  like) and has the project at the same path, so a worker writes its run folder as on one machine.
  The run store's SQLite file must not be written over a network filesystem, so it stays on the
  node that owns it, served there by one detached actor: workers write their epochs, status and
  heartbeats through it, and the app and the CLI read the store as always (docs/distributed.md).
- **Cancel** is the store's cancel flag, which the worker's heartbeat turns into a clean stop, as
  on one machine; a run still waiting for resources is removed from the cluster at once.
"""
from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import threading
from pathlib import Path

import ray
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from .config import ExperimentConfig
from .errors import ConfigError
from .runs import RunsRoot
from .store import RunRecord, RunStore

NAMESPACE = "bdcore"
LOOKUP_TIMEOUT_S = 120.0  # a store call or a signal (the first waits for the store's actor to start)


def _env_float(name: str, default: float) -> float:
    try:
        value = float(os.environ.get(name) or default)
    except ValueError:
        raise ConfigError(f"{name} must be a number, not {os.environ[name]!r}") from None
    if value < 0:
        raise ConfigError(f"{name} must not be negative, not {value}")
    return value


def connect() -> None:
    """Join the cluster at ``$RAY_ADDRESS`` (else the one started on this machine) once per process."""
    if ray.is_initialized():
        return
    address = os.environ.get("RAY_ADDRESS") or "auto"
    try:
        ray.init(address=address, namespace=NAMESPACE, log_to_driver=False, logging_level="warning",
                 configure_logging=False)
    except (ConnectionError, RuntimeError) as err:
        raise ConfigError(f"no Ray cluster at {address} ({err}); start one with `ray start --head` and "
                          "set RAY_ADDRESS to its address, or use BD_JOBS_BACKEND=local") from None


@ray.remote(num_cpus=0, max_restarts=-1, max_task_retries=-1)
class StoreServer:
    """The run store, served on the node that holds its file to workers on any node."""

    def __init__(self, path: str):
        self.store = RunStore(path)

    def call(self, method: str, *args):
        return getattr(self.store, method)(*args)


def _store_server_name(store: RunStore) -> str:
    return "store-" + hashlib.sha1(str(store.path.resolve()).encode()).hexdigest()[:12]


def serve_store(store: RunStore) -> str:
    """Start (once) the actor serving ``store``, pinned to this node; returns its name."""
    name = _store_server_name(store)
    here = NodeAffinitySchedulingStrategy(node_id=ray.get_runtime_context().get_node_id(), soft=False)
    StoreServer.options(name=name, lifetime="detached", get_if_exists=True,
                        scheduling_strategy=here).remote(str(store.path.resolve()))
    return name


class RemoteStore:
    """What a worker started by Ray writes the store through: the run store's methods, each a call
    to the node holding the file. The runs folder itself is the same path on every node."""

    def __init__(self, server_name: str, store_path: str | Path):
        connect()
        self.path = Path(store_path)
        self.root = RunsRoot.holding(self.path)
        self._server = ray.get_actor(server_name, namespace=NAMESPACE)

    def __getattr__(self, method: str):
        def call(*args):
            return ray.get(self._server.call.remote(method, *args), timeout=LOOKUP_TIMEOUT_S)
        return call


@ray.remote(max_restarts=0)
class RunLauncher:
    """Holds a run's resources on the node Ray chose and runs its worker there; exits with it."""

    def __init__(self, command: list[str], cwd: str, env: dict[str, str], log: str):
        Path(log).parent.mkdir(parents=True, exist_ok=True)
        with open(log, "ab") as out:  # Ray set CUDA_VISIBLE_DEVICES to this actor's GPUs in os.environ
            self.process = subprocess.Popen(command, cwd=cwd, env={**os.environ, **env}, stdout=out,
                                            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                            start_new_session=True)
        threading.Thread(target=self._exit_with_worker, daemon=True).start()

    def _exit_with_worker(self) -> None:
        """A worker that ends normally releases this actor itself (``release``); one that was
        killed leaves it to this, which Ray logs as an unexpected exit."""
        self.process.wait()
        os._exit(0)  # the actor's end hands its CPUs and GPUs back to the cluster

    def signal(self, number: int) -> None:
        if self.process.poll() is None:
            os.kill(self.process.pid, number)


def _launcher_name(record: RunRecord) -> str:
    return f"run-{record.id}-{record.attempts}"


def _launcher(record: RunRecord):
    """The run's launcher actor, waiting for resources or running; None once it has ended."""
    try:
        return ray.get_actor(_launcher_name(record), namespace=NAMESPACE)
    except ValueError:
        return None


def release(record: RunRecord) -> None:
    """Hand a finished run's CPUs and GPUs back to the cluster: its worker calls this last."""
    launcher = _launcher(record)
    if launcher is not None:
        ray.kill(launcher, no_restart=True)  # the worker runs in a session of its own and goes on


def resources(config: ExperimentConfig, procs: int) -> dict[str, float]:
    """What a run asks the cluster for: ``$BD_RAY_CPUS_PER_RUN`` CPUs (default 1) and, unless it
    trains on the CPU or the cluster has no GPU, ``$BD_RAY_GPUS_PER_RUN`` GPUs (default 1; a
    fraction shares a GPU among runs), each times its processes."""
    cpus = _env_float("BD_RAY_CPUS_PER_RUN", 1.0) * procs
    has_gpus = ray.cluster_resources().get("GPU", 0) > 0
    wants_gpu = config.device != "cpu" and (config.device != "auto" or has_gpus)
    gpus = _env_float("BD_RAY_GPUS_PER_RUN", 1.0) * procs if wants_gpu else 0.0
    return {"num_cpus": cpus, "num_gpus": gpus}


class RayBackend:
    """The job queue's backend for a Ray cluster: Ray places runs, so every queued run is sent at
    once (``$BD_MAX_JOBS`` caps how many are out) and waits in the cluster for its resources."""

    name = "ray"

    def __init__(self):
        connect()

    def capacity(self) -> int:
        return max(1, int(os.environ.get("BD_MAX_JOBS") or 1000))

    def place(self, config: ExperimentConfig, in_use: list[int]) -> int | None:
        return None  # the cluster chooses nodes and GPUs

    def start(self, store: RunStore, run_id: str, gpu: int | None, command: list[str],
              cwd: Path) -> int | None:
        record = store.get(run_id)
        server = serve_store(store)
        env = {k: v for k, v in os.environ.items() if k.startswith("BD_")}
        env["RAY_ADDRESS"] = ray.get_runtime_context().gcs_address
        RunLauncher.options(name=_launcher_name(record), lifetime="detached",
                            **resources(record.config, record.procs)).remote(
            [*command, "--ray-store", server], str(cwd), env, str(store.root.worker_log(run_id)))
        store.set_message(run_id, "sent to the Ray cluster; waiting for its CPUs and GPUs")
        return None  # the worker records its own pid on the node Ray chose

    def alive(self, record: RunRecord) -> bool:
        return _launcher(record) is not None

    def stop(self, record: RunRecord, number: int = signal.SIGTERM) -> None:
        """Signal the run's worker; a run still waiting for resources is taken off the cluster."""
        launcher = _launcher(record)
        if launcher is None:
            return
        if record.pid is None:  # not started: nothing to stop cleanly
            ray.kill(launcher)
            return
        try:
            ray.get(launcher.signal.remote(int(number)), timeout=LOOKUP_TIMEOUT_S)
        except ray.exceptions.RayError:  # the actor ended meanwhile, with its worker
            pass
