"""The data path on real files: stand-in image collections written here, then prepared, streamed
and trained from (issue 13; the figures are in docs/performance.md, "The data path").

- ``prepare``: preparation throughput (images/s) of a 20,000-JPEG folder of mixed sizes up to
  4000 px, decoded at 96 px by this machine's cores;
- ``phone``: peak memory of a quick run whose unlabeled set is 300 phone photos (4032 x 3024 JPEG);
- ``stream-rss``: peak memory of a run streaming an unlabeled stand-in at 224 px, at two sizes;
- ``stream-speed``: training images/s streaming from the cache vs the same set in memory, the
  paper's CNN and MobileNetV2 at 96 px, measured alternately in one process;
- ``upload``: a 50 MB zip of JPEGs saved as an uploaded dataset, previewed and prepared (seconds).

Peak memory is the largest sum of RSS over the run's process and its children (the decoding
workers), sampled every 0.1 s, beside the run process's own peak (getrusage).

    python bench/data_path.py [--only prepare,phone,stream-rss,stream-speed,upload]
                              [--work /tmp/bd-data-bench] [--quick] [--out docs/bench-data-{device}.json]
"""
from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from common import Figure, environment, format_markdown, format_table  # noqa: E402

from bdcore.data.collection_sets import load_collection  # noqa: E402
from bdcore.data.pairing import pair_datasets  # noqa: E402
from bdcore.data.prepared import cache_root  # noqa: E402
from bdcore.models import build_model  # noqa: E402
from bdcore.stage_settings import StageSettings  # noqa: E402
from bdcore.stages import train_teacher  # noqa: E402

PY = sys.executable
SHARED_DATA = ROOT.parent / "shared" / "datasets"


# --- stand-in images ---------------------------------------------------------------------------
def standin(rng: np.random.Generator, width: int, height: int,
            tint: tuple[int, int, int] | None = None) -> Image.Image:
    """A photo-like image: smooth random colour fields (a small random grid, upsampled) with a
    little grain, so that JPEG sizes and decode costs are those of real photos, not of noise."""
    small = rng.integers(0, 256, (6, 8, 3), dtype=np.uint8)
    if tint is not None:
        small = (small // 2 + np.array(tint, dtype=np.uint8) // 2).astype(np.uint8)
    img = Image.fromarray(small).resize((width, height), Image.BICUBIC)
    grain = rng.integers(-12, 13, (min(height, 512), min(width, 512), 3))
    pixels = np.asarray(img).astype(np.int16)
    pixels[: grain.shape[0], : grain.shape[1]] += grain
    return Image.fromarray(pixels.clip(0, 255).astype(np.uint8))


def write_pool(folder: Path, n_files: int, distinct: int, sizes, seed: int = 0,
               tints: list | None = None) -> Path:
    """``n_files`` JPEGs in ``folder``: ``distinct`` generated ones (sizes from ``sizes(rng)``),
    then byte copies of them (decoding a copy costs what the original does)."""
    if folder.is_dir() and sum(1 for _ in folder.rglob("*.jpg")) == n_files:
        return folder  # written by an earlier run of this bench
    shutil.rmtree(folder, ignore_errors=True)
    rng = np.random.default_rng(seed)
    originals = []
    for i in range(min(distinct, n_files)):
        sub = folder if tints is None else folder / f"class{i % len(tints):02d}"
        sub.mkdir(parents=True, exist_ok=True)
        path = sub / f"img{i:06d}.jpg"
        standin(rng, *sizes(rng), None if tints is None else tints[i % len(tints)]).save(path, quality=85)
        originals.append(path)
    for i in range(len(originals), n_files):
        source = originals[i % len(originals)]
        shutil.copyfile(source, source.parent / f"img{i:06d}.jpg")
    return folder


def mixed_size(rng: np.random.Generator) -> tuple[int, int]:
    """Longer side log-uniform from 160 to 4000 px, landscape, portrait or square."""
    long = int(np.exp(rng.uniform(np.log(160), np.log(4000))))
    short = int(long * rng.choice([0.75, 1.0, 0.5625]))
    return (long, short) if rng.random() < 0.6 else (short, long)


# --- measuring a command's memory ----------------------------------------------------------------
def _tree_rss_kb(pid: int) -> int:
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        try:
            status = Path(f"/proc/{p}/status").read_text()
            total += int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmRSS")))
            for task in Path(f"/proc/{p}/task").iterdir():
                todo += [int(c) for c in (task / "children").read_text().split()]
        except (OSError, StopIteration, ValueError):
            continue
    return total


def measured_run(command: list[str], env: dict) -> dict:
    """Run ``command``; its wall time, exit status, and peak memory (tree sum and own)."""
    start, peak = time.perf_counter(), 0
    proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    while proc.poll() is None:
        peak = max(peak, _tree_rss_kb(proc.pid))
        time.sleep(0.1)
    out, err = proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed ({proc.returncode}): {err[-2000:]}")
    return {"seconds": time.perf_counter() - start, "peak_tree_mb": peak / 1024, "stdout": out, "stderr": err}


def bench_env(work: Path) -> dict:
    return {**os.environ, "BD_CACHE_DIR": str(work / "cache"), "BD_RUNS_DIR": str(work / "runs"),
            "BD_DATA_DIR": os.environ.get("BD_DATA_DIR", str(SHARED_DATA)), "BD_OFFLINE": "1"}


def fresh_cache(work: Path) -> None:
    shutil.rmtree(work / "cache", ignore_errors=True)


# --- the benchmarks ------------------------------------------------------------------------------
def prepare_throughput(work: Path, quick: bool) -> list[Figure]:
    n = 400 if quick else 20_000
    folder = write_pool(work / f"mixed-{n}", n, 60 if quick else 1000, mixed_size)
    fresh_cache(work)
    run = measured_run([PY, "-m", "bdcore", "datasets", "prepare", f"folder:{folder}", "--shape", "3,96,96",
                        "--json"], bench_env(work))
    (row,) = json.loads(run["stdout"])
    cores = os.cpu_count()
    return [Figure("prepare: mixed-size JPEG folder at 96 px", row["images"] / run["seconds"], "img/s", "",
                   None, f"{n:,} JPEGs, longer side 160-4000 px log-uniform ({min(n, 1000)} distinct, "
                   f"the rest byte copies); {run['seconds']:.0f} s wall on {cores} cores, process start "
                   f"included; peak memory {run['peak_tree_mb']:.0f} MB (all processes)")]


def phone_photos(work: Path, quick: bool) -> list[Figure]:
    n = 30 if quick else 300
    folder = write_pool(work / f"phone-{n}", n, 10 if quick else 30, lambda rng: (4032, 3024), seed=1)
    fresh_cache(work)
    run = measured_run([PY, "-m", "bdcore", "run", "--preset", "quick", "--unlabeled", f"folder:{folder}",
                        "--device", "cpu", "--json"], bench_env(work))
    result = json.loads(run["stdout"])
    return [Figure("quick run, unlabeled = phone photos: peak memory", run["peak_tree_mb"], "MB",
                   "< 1,500 MB", run["peak_tree_mb"] < 1500,
                   f"{n} JPEGs of 4032x3024 decoded at 28x28 grey (draft mode) into the cache and trained "
                   f"on; mnist labeled (quick preset); wall {run['seconds']:.0f} s; fine-tune "
                   f"{result['finetune_acc']['all']:.2%}")]


def stream_rss(work: Path, quick: bool) -> list[Figure]:
    sizes = (500, 1000) if quick else (10_000, 50_000)
    tints = [tuple(int(v) for v in np.random.default_rng(c).integers(0, 256, 3)) for c in range(10)]
    labeled = write_pool(work / "labeled-224", 600, 600, lambda rng: (256, 256), seed=2, tints=tints)
    figures = []
    for n in sizes:
        folder = write_pool(work / f"unlabeled-224-{n}", n, 500, lambda rng: (320, 240), seed=3)
        env = bench_env(work)
        prep = measured_run([PY, "-m", "bdcore", "datasets", "prepare", f"folder:{folder}", "--shape",
                             "3,224,224", "--json"], env)
        run = measured_run([PY, "-m", "bdcore", "run", "--labeled", f"folder:{labeled}", "--unlabeled",
                            f"folder:{folder}", "--image-size", "224", "--teacher", "mlp", "--student", "mlp",
                            "--teacher-epochs", "1", "--blind-epochs", "1", "--finetune-epochs", "1",
                            "--finetune-min-steps", "0", "--batch-size", "128", "--device", "cpu",
                            "--json"], env)
        streamed = any("streamed" in note for note in json.loads(run["stdout"])["notes"])
        figures.append(Figure(f"run streaming {n:,} images at 224 px: peak memory", run["peak_tree_mb"], "MB",
                              "< 3,000 MB", run["peak_tree_mb"] < 3000 and streamed,
                              f"unlabeled {n:,} JPEG stand-ins prepared at 3x224x224 "
                              f"({n * 224 * 224 * 3 / 2**30:.1f} GB uint8 in the cache, "
                              f"{prep['seconds']:.0f} s to prepare) and streamed through the teacher's "
                              f"logits and one blind epoch (mlp -> mlp); labeled 600 images in memory; "
                              f"run wall {run['seconds']:.0f} s; streamed: {streamed}"))
    return figures


def stream_speed(work: Path, quick: bool) -> list[Figure]:
    n = 300 if quick else 2000
    tints = [tuple(int(v) for v in np.random.default_rng(c).integers(0, 256, 3)) for c in range(10)]
    folder = write_pool(work / f"labeled-96-{n}", n, n, lambda rng: (128, 128), seed=4, tints=tints)
    os.environ["BD_CACHE_DIR"] = str(work / "cache")
    spec = f"folder:{folder}"
    sets = {mode: load_collection(spec, "train", image_size=96, stream=mode == "stream")
            for mode in ("memory", "stream")}
    test = load_collection(spec, "test", shape=sets["memory"].shape, stream=False)
    data = {mode: pair_datasets(s, test, s) for mode, s in sets.items()}
    figures = []
    for model in ("cnn", "mobilenet_v2"):
        rates: dict[str, list[float]] = {"memory": [], "stream": []}
        for _round in range(2):
            for mode in ("memory", "stream"):  # alternating, so both see the same machine
                d = data[mode]
                net = build_model(model, d.input_shape, d.num_classes)
                start = time.perf_counter()
                train_teacher(net, d.train_x, d.train_y, d.test_x[:64], d.test_y[:64],
                              StageSettings(1, 1e-3, 64), seed=0, amp=False)
                rates[mode].append(len(d.train_y) / (time.perf_counter() - start))
        memory, stream = max(rates["memory"]), max(rates["stream"])
        figures.append(Figure(f"{model} at 96 px: streaming / in memory", stream / memory, "x", ">= 0.80",
                              stream / memory >= 0.8,
                              f"{n * 4 // 5:,} training images, batch 64, fp32; best of 2 alternating "
                              "epochs: "
                              f"in memory {memory:.0f} img/s, streamed {stream:.0f} img/s"))
    return figures


def upload_zip(work: Path, quick: bool) -> list[Figure]:
    from bdcore.data.collection_sets import load_collection as load
    from bdcore.preview import preview_dataset
    from bdcore.uploads import delete_upload, save_zip

    os.environ.update(BD_CACHE_DIR=str(work / "cache"), BD_DATA_DIR=str(work / "upload-data"))
    rng = np.random.default_rng(5)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as z:
        count = 0
        while buffer.tell() < (5 if quick else 50) * 2**20:
            image = io.BytesIO()
            standin(rng, 1024, 768).save(image, "JPEG", quality=92)
            z.writestr(f"photos/p{count:04d}.jpg", image.getvalue())
            count += 1
    data = buffer.getvalue()
    start = time.perf_counter()
    report = save_zip("bench-upload", data)
    saved = time.perf_counter()
    preview = preview_dataset(f"folder:{report.path}")
    previewed = time.perf_counter()
    load(f"folder:{report.path}", "train", shape=(3, 96, 96), stream=True)
    prepared = time.perf_counter()
    delete_upload("bench-upload")
    return [Figure("upload: 50 MB zip saved, previewed, prepared", prepared - start, "s", "", None,
                   f"{len(data) / 2**20:.0f} MB zip of {count} JPEGs (1024x768): saved (validated and "
                   f"extracted) {saved - start:.1f} s, previewed {previewed - saved:.1f} s "
                   f"({'ok' if preview.ok else preview.source}), prepared at 96 px "
                   f"{prepared - previewed:.1f} s")]


BENCHES = {"prepare": prepare_throughput, "phone": phone_photos, "stream-rss": stream_rss,
           "stream-speed": stream_speed, "upload": upload_zip}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", default=",".join(BENCHES), help="comma-separated: " + ", ".join(BENCHES))
    parser.add_argument("--work", type=Path, default=Path("/tmp/bd-data-bench"),
                        help="where stand-in images, the cache and runs go (kept for a rerun)")
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke test")
    parser.add_argument("--out", default=None,
                        help="write JSON here ({device} is replaced) and .md beside it")
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    figures, timings = [], {}
    for name in args.only.split(","):
        start = time.perf_counter()
        print(f"[{name}] ...", file=sys.stderr, flush=True)
        found = BENCHES[name](args.work, args.quick)
        timings[name] = time.perf_counter() - start
        for f in found:
            print(f"  {f.name}: {f.cell()}  {f.detail}", file=sys.stderr, flush=True)
        figures += found
    print(format_table(figures))
    if args.out:
        out = Path(args.out.replace("{device}", "cpu"))
        out.write_text(json.dumps({"environment": environment(), "seconds": timings,
                                   "figures": [f.__dict__ for f in figures], "cache": str(cache_root())},
                                  indent=1))
        out.with_suffix(".md").write_text(format_markdown(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
