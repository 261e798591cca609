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
import socket
import subprocess
import threading
from collections.abc import Callable
from pathlib import Path

import ray
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from .config import ExperimentConfig
from .errors import ConfigError, first_line
from .runs import RunsRoot
from .store import RunRecord, RunStore

NAMESPACE = "bdcore"
CPUS_PER_RUN, GPUS_PER_RUN = "BD_RAY_CPUS_PER_RUN", "BD_RAY_GPUS_PER_RUN"
LOOKUP_TIMEOUT_S = 120.0  # a store call or a signal (the first waits for the store's actor to start)


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

    def call(self, method: str, *args: object) -> object:
        return getattr(self.store, method)(*args)

    def node_id(self) -> str:
        return ray.get_runtime_context().get_node_id()


def _store_server_name(store: RunStore) -> str:
    return "store-" + hashlib.sha1(str(store.path.resolve()).encode()).hexdigest()[:12]


def serve_store(store: RunStore) -> str:
    """Start (once) the actor serving ``store``, pinned to this node; returns its name. Refused on
    another node than the one serving it already: SQLite must not be written from two machines."""
    name, here = _store_server_name(store), ray.get_runtime_context().get_node_id()
    server = StoreServer.options(
        name=name, lifetime="detached", get_if_exists=True,
        scheduling_strategy=NodeAffinitySchedulingStrategy(node_id=here, soft=False),
    ).remote(str(store.path.resolve()))
    if ray.get(server.node_id.remote(), timeout=LOOKUP_TIMEOUT_S) != here:
        raise ConfigError(f"the run store {store.path} is served from another node of the Ray cluster: "
                          "run the app and the jobs and study commands on that node")
    return name


class RemoteStore:
    """What a worker started by Ray writes the store through: the run store's methods, each a call
    to the node holding the file. The runs folder itself is the same path on every node."""

    def __init__(self, server_name: str, store_path: str | Path):
        connect()
        self.path = Path(store_path)
        self.root = RunsRoot.holding(self.path)
        self._server = ray.get_actor(server_name, namespace=NAMESPACE)

    def __getattr__(self, method: str) -> Callable[..., object]:
        def call(*args: object) -> object:
            return ray.get(self._server.call.remote(method, *args), timeout=LOOKUP_TIMEOUT_S)
        return call


@ray.remote(max_restarts=0)
class RunLauncher:
    """Holds a run's resources on the node Ray chose and runs its worker there; exits with it.
    It records the worker's pid in the store at once (with a heartbeat), as the local backend does
    on start: until then the run is waiting for resources, after it the heartbeat watches it."""

    def __init__(self, command: list[str], cwd: str, env: dict[str, str], log: str, run_id: str,
                 server_name: str):
        Path(log).parent.mkdir(parents=True, exist_ok=True)
        with open(log, "ab") as out:  # Ray set CUDA_VISIBLE_DEVICES to this actor's GPUs in os.environ
            try:
                self.process = subprocess.Popen(command, cwd=cwd, env={**os.environ, **env}, stdout=out,
                                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                                start_new_session=True)
            except OSError as err:  # no project or interpreter at this path on this node
                out.write(f"could not start the worker on {socket.gethostname()}: {err}\n".encode())
                raise
        server = ray.get_actor(server_name, namespace=NAMESPACE)
        ray.get(server.call.remote("set_worker", run_id, self.process.pid), timeout=LOOKUP_TIMEOUT_S)
        threading.Thread(target=self._exit_with_worker, daemon=True).start()

    def _exit_with_worker(self) -> None:
        self.process.wait()
        # the actor's end hands its CPUs and GPUs back to the cluster (Ray logs it as a worker's
        # unexpected exit: an actor can only leave cleanly from one of its own tasks, and a task
        # sent by a short-lived `jobs submit` would be lost while the actor waits for resources)
        os._exit(0)

    def signal(self, number: int) -> None:
        if self.process.poll() is None:
            os.kill(self.process.pid, number)


def _launcher_name(record: RunRecord) -> str:
    return f"run-{record.id}-{record.attempts}"


def _launcher(record: RunRecord) -> ray.actor.ActorHandle | None:
    """The run's launcher actor, waiting for resources or running; None once it has ended."""
    try:
        return ray.get_actor(_launcher_name(record), namespace=NAMESPACE)
    except ValueError:
        return None


def _per_run(name: str) -> float:
    """``$name``, the CPUs or GPUs a run asks for per process: 1 unless set; GPUs may be 0."""
    try:
        value = float(os.environ.get(name) or 1.0)
    except ValueError:
        raise ConfigError(f"{name} must be a number, not {os.environ[name]!r}") from None
    if value < 0:
        raise ConfigError(f"{name} must not be negative, not {value}")
    if value == 0 and name == CPUS_PER_RUN:
        raise ConfigError(f"{CPUS_PER_RUN} must be above 0")
    return value


def resources(config: ExperimentConfig, procs: int) -> dict[str, float]:
    """What a run asks the cluster for: ``$BD_RAY_CPUS_PER_RUN`` CPUs (default 1) and, unless it
    trains on the CPU or the cluster has no GPU, ``$BD_RAY_GPUS_PER_RUN`` GPUs (default 1; a
    fraction shares a GPU among runs), each times its processes. A run of several processes takes
    whole GPUs, one per process."""
    cpus = _per_run(CPUS_PER_RUN) * procs
    has_gpus = ray.cluster_resources().get("GPU", 0) > 0
    wants_gpu = config.device != "cpu" and (config.device != "auto" or has_gpus)
    gpus = _per_run(GPUS_PER_RUN) if wants_gpu else 0.0
    return {"num_cpus": cpus, "num_gpus": float(procs if procs > 1 and gpus else gpus)}


def check_fits(config: ExperimentConfig, wanted: dict[str, float]) -> None:
    """Refuse a run that no node of the cluster can ever hold, and a device Ray cannot give."""
    if config.device.startswith("cuda:") and config.device != "cuda:0":
        raise ConfigError(f"on a Ray cluster a run uses the GPU Ray gives it: choose device auto or "
                          f"cuda, not {config.device}")
    nodes = [n["Resources"] for n in ray.nodes() if n.get("Alive")]
    if not any(n.get("CPU", 0) >= wanted["num_cpus"] and n.get("GPU", 0) >= wanted["num_gpus"]
               for n in nodes):
        largest = max(nodes, key=lambda n: (n.get("GPU", 0), n.get("CPU", 0)), default={})
        raise ConfigError(f"no node of the Ray cluster has {wanted['num_cpus']:g} CPUs and "
                          f"{wanted['num_gpus']:g} GPUs for this run (the largest: {largest.get('CPU', 0):g} "
                          f"CPUs, {largest.get('GPU', 0):g} GPUs); lower BD_RAY_CPUS_PER_RUN, "
                          "BD_RAY_GPUS_PER_RUN or the run's processes")


class RayBackend:
    """The job queue's backend for a Ray cluster: Ray places runs, so every queued run is sent at
    once (``$BD_MAX_JOBS`` caps how many are out; the next are sent by the next ``schedule``) and
    waits in the cluster for its resources."""

    never_started = ("the Ray cluster did not start its worker (its log: jobs logs --worker; else Ray's "
                     "logs on the node)")

    def __init__(self):
        _per_run(CPUS_PER_RUN)  # a bad setting is one error, not one per queued run
        _per_run(GPUS_PER_RUN)
        connect()

    def capacity(self) -> int:
        return max(1, int(os.environ.get("BD_MAX_JOBS") or 1000))

    def place(self, config: ExperimentConfig, in_use: list[int]) -> int | None:
        return None  # the cluster chooses nodes and GPUs

    def start(self, store: RunStore, record: RunRecord, gpu: int | None, command: list[str],
              cwd: Path) -> int | None:
        """Send the run to the cluster (``gpu`` is always None: Ray places it). Returns None: the
        launcher records the worker's pid once Ray has started it."""
        run_id = record.id
        wanted = resources(record.config, record.procs)
        check_fits(record.config, wanted)
        env = {k: v for k, v in os.environ.items() if k.startswith("BD_")}
        env["RAY_ADDRESS"] = ray.get_runtime_context().gcs_address
        try:
            server = serve_store(store)
            RunLauncher.options(name=_launcher_name(record), lifetime="detached", **wanted).remote(
                [*command, "--ray-store", server], str(cwd), env, str(store.root.worker_log(run_id)),
                run_id, server)
        except ray.exceptions.RayError as err:
            raise ConfigError(f"the Ray cluster refused the run: {first_line(err)}") from None
        store.set_message(run_id, "sent to the Ray cluster; waiting for its CPUs and GPUs")
        return None

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
