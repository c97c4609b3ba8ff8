"""Benchmarks of the data stage, measured on the pipeline's own outputs."""

import heapq
import re
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from hepclust.generate.fatras import GenericDetector
from hepclust.generate.tracking_events import EventSettings, simulate_event
from hepclust.io.formats import convert
from hepclust.io.hls4ml import write_hls4ml
from hepclust.io.jsonio import read_json
from hepclust.io.parquet import read_table
from hepclust.io.schema import JETS
from hepclust.tracking.score import score_event


def generation_rate(stats_paths: list[str]) -> dict:
    """Selected events per CPU second (one core) summed over the shards' stats files."""
    stats = [read_json(p) for p in stats_paths]
    selected = sum(s["selected"] for s in stats)
    cpu = sum(s["cpu_seconds"] for s in stats)
    by_process = {}
    for s in stats:
        entry = by_process.setdefault(s["process"], {"selected": 0, "cpu_seconds": 0.0})
        entry["selected"] += s["selected"]
        entry["cpu_seconds"] += s["cpu_seconds"]
    for entry in by_process.values():
        entry["per_s_per_core"] = entry["selected"] / entry["cpu_seconds"]
    return {"per_s_per_core": selected / cpu if cpu else None, "by_process": by_process}


def conversion_rate(jets_path: str | Path) -> dict:
    """Rows per second converting an hls4ml-layout HDF5 file (written from the generated
    jets) to Parquet through `hepclust convert`'s code path."""
    jets = read_table(jets_path, JETS)
    with tempfile.TemporaryDirectory() as scratch:
        source = Path(scratch) / "jets_hls4ml.h5"
        write_hls4ml(source, jets)
        start = time.perf_counter()
        rows = convert(source, Path(scratch) / "jets.parquet").rows
        seconds = time.perf_counter() - start
    return {"rows": rows, "seconds": seconds, "rows_per_s": rows / seconds}


def data_benchmark(jets_path: str | Path, jet_stats: list[str], dijet_stats: list[str]) -> dict:
    jets = generation_rate(jet_stats) if jet_stats else {"per_s_per_core": None}
    dijets = generation_rate(dijet_stats) if dijet_stats else {"per_s_per_core": None}
    conversion = conversion_rate(jets_path)
    return {
        "jets_per_s_per_core": jets["per_s_per_core"],
        "dijets_per_s_per_core": dijets["per_s_per_core"],
        "convert_rows_per_s": conversion["rows_per_s"],
        "jets_generation": jets,
        "dijets_generation": dijets,
        "conversion": {**conversion, "format": "hls4ml"},
    }


def simulation_rate(detector: GenericDetector, settings: EventSettings, seed: int,
                    events: int) -> dict:
    """Events per second (wall and CPU, one core) simulating at `settings`, the detector
    already built (and Pythia set up, by a first event that is not counted)."""
    simulate_event(detector, settings, seed, 0)
    cpu, wall = time.process_time(), time.perf_counter()
    events_made = [simulate_event(detector, settings, seed, event_id)
                   for event_id in range(1, events + 1)]
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    return {"events": events, "density": settings.density, "source": settings.source,
            "particles_per_event": float(np.mean([e.particles.num_rows for e in events_made])),
            "hits_per_event": float(np.mean([e.hits.num_rows for e in events_made])),
            "wall_seconds": wall, "cpu_seconds": cpu,
            "events_per_s": events / wall, "events_per_s_per_core": events / cpu}


def scoring_rate(hits: pa.Table, repeats: int = 3) -> dict:
    """Hits per second scoring a realistic submission of the event `hits`: the truth with
    one particle in ten split in two and the noise hits made single-hit tracks."""
    truth = hits.select(["hit_id", "particle_id", "weight"]).to_pandas()
    rng = np.random.default_rng(0)
    track_id = truth["particle_id"].to_numpy() * 2
    split = rng.random(len(truth)) < 0.05
    track_id[split] += 1
    noise = truth["particle_id"].to_numpy() == 0
    track_id[noise] = -np.arange(1, noise.sum() + 1)
    submission = pd.DataFrame({"hit_id": truth["hit_id"], "track_id": track_id})
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        score = score_event(truth, submission)
        seconds.append(time.perf_counter() - start)
    best = min(seconds)
    return {"hits": len(truth), "seconds": best, "score": score,
            "score_hits_per_s": len(truth) / best}


def tracking_data_benchmark(settings: EventSettings, seed: int, events: int = 10,
                            full_density_events: int = 2) -> dict:
    start = time.perf_counter()
    detector = GenericDetector(settings.field_tesla)
    geometry_seconds = time.perf_counter() - start
    default = simulation_rate(detector, settings, seed, events)
    full_settings = settings.at_density(1.0)
    full = simulation_rate(detector, full_settings, seed, full_density_events)
    full_event = simulate_event(detector, full_settings, seed, full_density_events + 1)
    scoring = scoring_rate(full_event.hits)
    return {
        "events_per_s": default["events_per_s"],
        "events_per_s_per_core": default["events_per_s_per_core"],
        "events_per_s_full_density": full["events_per_s"],
        "events_per_s_per_core_full_density": full["events_per_s_per_core"],
        "score_hits_per_s": scoring["score_hits_per_s"],
        "geometry_build_seconds": geometry_seconds,
        "default_density": default,
        "full_density": full,
        "scoring": scoring,
    }


def abcnet_training_rate(particles: int, batch_size: int = 128, steps: int = 10,
                         seed: int = 0, pooling: str = "mean") -> dict:
    """ABCNet training steps (the jets network: 20 mass classes, E = 3; Adam) on random
    full jets of `particles` particles, on this process's CPU threads: jets per second of
    wall time and per CPU second of this process, after two warm-up steps."""
    import torch

    from hepclust.ucluster.abcnet import ABCNet
    from hepclust.ucluster.features import FEATURES
    from hepclust.ucluster.losses import focal_loss
    from hepclust.ucluster.training import reuse_freed_memory

    reuse_freed_memory()
    generator = torch.Generator().manual_seed(seed)
    features = torch.randn(batch_size, particles, len(FEATURES), generator=generator)
    mask = torch.ones(batch_size, particles, dtype=torch.bool)
    target = torch.randint(0, 20, (batch_size,), generator=generator)
    torch.manual_seed(seed)
    model = ABCNet(len(FEATURES), 20, k=10, embedding_size=3, pooling=pooling)
    optimizer = torch.optim.Adam(model.parameters(), fused=True)  # as training.train

    def step():
        optimizer.zero_grad(set_to_none=True)
        focal_loss(model(features, mask)[0], target).backward()
        optimizer.step()

    step()
    step()
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(steps):
        step()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return {"jets_per_s": steps * batch_size / wall, "jets_per_cpu_s": steps * batch_size / cpu,
            "batch_size": batch_size, "pooling": pooling}


def _epochs_by_stage(histories: list[str]) -> dict[str, list[dict]]:
    """The epochs of the training histories (``<stage>_history.json``) by stage."""
    epochs_by_stage: dict[str, list[dict]] = {}
    for path in histories:
        stage = Path(path).stem.removesuffix("_history")
        epochs_by_stage.setdefault(stage, []).extend(read_json(path))
    return epochs_by_stage


def _tally(stages: dict[str, dict], stage: str, row: pd.Series) -> float:
    """Add one job's row of a Snakemake benchmark file to its stage's totals in `stages`;
    the job's CPU seconds."""
    totals = stages.setdefault(stage, {"jobs": 0, "wall_seconds": 0.0, "cpu_seconds": 0.0})
    totals["jobs"] += 1
    totals["wall_seconds"] += float(row["s"])
    totals["cpu_seconds"] += float(row["cpu_time"])
    return float(row["cpu_time"])


def jets_job_needs(jobs: list[str]) -> dict[str, list[str]]:
    """The jets workflow's dependencies between jobs named by their benchmark file's stem
    (prepare, pretrain_<seed>, ucluster_<seed>, supervised_<seed>, evaluate_<seed>,
    metrics, plots): each job -> the jobs it waits for. Data generation comes before the
    analysis and is not a job here."""
    known = set(jobs)
    needs = {}
    for job in jobs:
        stage, _, seed = job.partition("_")
        if stage == "prepare":
            needs[job] = []
        elif stage in ("pretrain", "supervised"):
            needs[job] = [name for name in ("prepare",) if name in known]
        elif stage == "ucluster":
            needs[job] = [name for name in (f"pretrain_{seed}",) if name in known]
        elif stage == "evaluate":
            needs[job] = [f"{name}_{seed}" for name in ("pretrain", "ucluster", "supervised")
                          if f"{name}_{seed}" in known]
        elif stage == "metrics":
            needs[job] = [other for other in jobs if other.startswith("evaluate_")]
        elif stage == "plots":
            needs[job] = [name for name in ("metrics",) if name in known]
        else:
            raise ValueError(f"benchmark {job}: not a stage of the jets workflow")
    return needs


def jets_time_on_cores(benchmarks: list[str], cores: int = 2) -> dict:
    """The whole jets analysis's time on `cores` unloaded cores: the jobs' CPU seconds
    from Snakemake's benchmark files (``results/benchmarks/jets/<job>.tsv``, every job one
    thread) scheduled along the workflow's dependencies (`schedule_seconds`), which holds
    on a shared machine where the elapsed time does not; with the CPU and wall seconds of
    every stage summed over its jobs."""
    cpu: dict[str, float] = {}
    stages: dict[str, dict] = {}
    for path in benchmarks:
        row = pd.read_csv(path, sep="\t").iloc[0]
        job = Path(path).stem
        cpu[job] = _tally(stages, job.partition("_")[0], row)
    return {"estimated_seconds_on_cores": schedule_seconds(cpu, jets_job_needs(list(cpu)),
                                                           cores),
            "total_cpu_seconds": sum(cpu.values()), "stages": stages}


def jets_benchmark(model_path: str | Path, test_path: str | Path, histories: list[str],
                   batch_size: int = 512, repeats: int = 3,
                   rate_particles: tuple[int, ...] = (30,), train_batch_size: int = 128,
                   pooling: str = "mean", benchmarks: list[str] | None = None,
                   cores: int = 2) -> dict:
    """UCluster inference throughput on the CPU (one thread, jets/s over the test split),
    the training time per epoch of every stage, from the training histories, ABCNet's
    training rate on `rate_particles` particles and at the analysis's particle count
    (`abcnet_training_rate` with the analysis's `train_batch_size` and `pooling`), and
    with the jobs' `benchmarks` the whole analysis's time on `cores` cores
    (`jets_time_on_cores`)."""
    import torch

    from hepclust.ucluster.jets import load_arrays, load_model, tensors
    from hepclust.ucluster.training import predict

    device = torch.device("cpu")
    model, _ = load_model(model_path, device)
    data = tensors(load_arrays(test_path))
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        predict(model, data, batch_size, device)
        seconds.append(time.perf_counter() - start)
    jets = len(data["features"])
    epochs_by_stage = _epochs_by_stage(histories)
    return {
        "inference_jets_per_s": jets / min(seconds),
        "inference_threads": torch.get_num_threads(),
        "train_seconds_per_epoch": {stage: float(np.mean([e["seconds"] for e in epochs]))
                                    for stage, epochs in epochs_by_stage.items()},
        "train_jets_per_s": {stage: sum(e["examples"] for e in epochs)
                             / sum(e["seconds"] for e in epochs)
                             for stage, epochs in epochs_by_stage.items()},
        # The same per CPU second of the training process (this process's threads): what
        # a shared machine's load does not change, unlike the wall time above.
        "train_jets_per_cpu_s": {stage: sum(e["examples"] for e in epochs)
                                 / sum(e["cpu_seconds"] for e in epochs)
                                 for stage, epochs in epochs_by_stage.items()
                                 if all("cpu_seconds" in e for e in epochs)},
        "particles_per_jet": int(data["mask"].shape[1]),
        "test_jets": jets,
        "train_rate_by_particles": {
            str(p): abcnet_training_rate(p, train_batch_size, pooling=pooling)
            for p in sorted({*rate_particles, int(data["mask"].shape[1])})},
        **(jets_time_on_cores(benchmarks, cores) if benchmarks else {}),
    }


def anomaly_job_needs(jobs: list[str], scan_runs: list[str]) -> dict[str, list[str]]:
    """The anomaly workflow's dependencies between jobs named "<stage>/<benchmark file
    stem>" (pretrain/n12000_1, ucluster/n12000_1_k30, ...): each job -> the jobs it waits
    for. `scan_runs` are the stems (n<events>_<seed>_k<k>) of the clusterings the calibration
    reads. Data generation comes before the analysis and is not a job here."""
    known = set(jobs)
    by_stage: dict[str, list[str]] = {}
    for job in jobs:
        by_stage.setdefault(job.split("/", 1)[0], []).append(job)

    def present(*names: str) -> list[str]:
        return [name for name in names if name in known]

    needs = {}
    for job in jobs:
        stage, stem = job.split("/", 1)
        run = re.fullmatch(r"n(\d+)_(\d+)(?:_k\d+)?", stem)
        if stage == "prepare":
            needs[job] = []
        elif stage in ("fit_range", "pretrain"):
            needs[job] = present("prepare/prepare")
        elif stage == "ucluster" and run:
            needs[job] = present(f"pretrain/n{run[1]}_{run[2]}")
        elif stage == "evaluate":
            needs[job] = present(f"ucluster/{stem}")
        elif stage == "fits":
            needs[job] = present(f"evaluate/{stem}", "fit_range/fit_range")
        elif stage == "inject":
            needs[job] = present(f"fits/{stem}")
        elif stage == "calibrate":
            needs[job] = present(*(f"evaluate/{r}" for r in scan_runs), "fit_range/fit_range")
        elif stage == "metrics":
            needs[job] = [other for name in ("evaluate", "fits", "inject", "calibrate",
                                             "fit_range") for other in by_stage.get(name, [])]
        elif stage == "plots":
            needs[job] = present("metrics/metrics")
        else:
            raise ValueError(f"benchmark {job}: not a stage of the anomaly workflow")
    return needs


def schedule_seconds(durations: dict[str, float], needs: dict[str, list[str]],
                     cores: int) -> dict:
    """The elapsed time of jobs of known `durations` on `cores` single-threaded cores,
    each job starting once the jobs it `needs` have ended: list scheduling, the ready job
    with the longest path to the end first. Returns {"seconds", "critical_path_seconds",
    "upper_bound_seconds", "cores"}: max(total / cores, critical path) bounds any schedule
    from below, and every schedule that leaves no core idle while a job is ready (Snakemake's,
    in whatever order it picks) ends by total / cores + (1 - 1 / cores) x critical path
    (Graham's bound)."""
    children: dict[str, list[str]] = {job: [] for job in durations}
    for job, parents in needs.items():
        for parent in parents:
            children[parent].append(job)
    waiting = {job: len(needs.get(job, [])) for job in durations}
    order = [job for job, count in waiting.items() if count == 0]
    for job in order:  # Kahn's topological order; grows while it is walked
        for child in children[job]:
            waiting[child] -= 1
            if waiting[child] == 0:
                order.append(child)
    if len(order) < len(durations):
        raise ValueError("the job dependencies have a cycle")
    level: dict[str, float] = {}  # the longest path from a job's start to the end
    for job in reversed(order):
        level[job] = durations[job] + max((level[c] for c in children[job]), default=0.0)
    waiting = {job: len(needs.get(job, [])) for job in durations}
    ready = [job for job, count in waiting.items() if count == 0]
    running: list[tuple[float, str]] = []
    now, done = 0.0, 0
    while done < len(durations):
        ready.sort(key=lambda job: level[job])
        while ready and len(running) < cores:
            job = ready.pop()
            heapq.heappush(running, (now + durations[job], job))
        now, job = heapq.heappop(running)
        done += 1
        for child in children[job]:
            waiting[child] -= 1
            if waiting[child] == 0:
                ready.append(child)
    critical = max(level.values(), default=0.0)
    return {"seconds": now, "critical_path_seconds": critical,
            "upper_bound_seconds": sum(durations.values()) / cores + (1 - 1 / cores) * critical,
            "cores": cores}


def anomaly_benchmark(benchmarks: list[str], histories: list[str],
                      scan_runs: list[str] | None = None, cores: int = 2) -> dict:
    """Wall and CPU seconds of every anomaly stage, summed over its jobs, from Snakemake's
    benchmark files (``results/benchmarks/anomaly/<stage>/<job>.tsv``), and the training
    throughput from the training histories. Jobs run side by side, so the elapsed time of
    a run is below the summed job wall time (about half of it with 2 busy cores).

    The time of the whole analysis on `cores` unloaded cores: the jobs' CPU seconds
    (every job runs one thread) scheduled along the workflow's dependencies
    (`schedule_seconds`; `scan_runs` as in `anomaly_job_needs`), which holds on a shared
    machine where the elapsed time does not; and the elapsed time of the run that wrote the
    benchmark files (each file's modification time less its job's wall seconds, to the
    last), which is the whole analysis only when one run made every file."""
    stages: dict[str, dict] = {}
    cpu: dict[str, float] = {}
    starts, ends = [], []
    for path in benchmarks:
        row = pd.read_csv(path, sep="\t").iloc[0]
        name = Path(path).parent.name
        cpu[f"{name}/{Path(path).stem}"] = _tally(stages, name, row)
        stage = stages[name]
        stage.setdefault("max_rss_mb", 0.0)
        ends.append(Path(path).stat().st_mtime)
        starts.append(ends[-1] - float(row["s"]))
        rss = pd.to_numeric(row["max_rss"], errors="coerce")  # "NA" for a very short job
        if pd.notna(rss):
            stage["max_rss_mb"] = max(stage["max_rss_mb"], float(rss))
    schedule = schedule_seconds(cpu, anomaly_job_needs(list(cpu), scan_runs or []), cores)
    epochs_by_stage = _epochs_by_stage(histories)
    return {
        "estimated_seconds_on_cores": schedule,
        "elapsed_seconds_of_the_run": max(ends) - min(starts) if ends else None,
        "total_job_wall_seconds": sum(s["wall_seconds"] for s in stages.values()),
        "total_cpu_seconds": sum(s["cpu_seconds"] for s in stages.values()),
        "stages": stages,
        "train_events_per_s": {stage: sum(e["examples"] for e in epochs)
                               / sum(e["seconds"] for e in epochs)
                               for stage, epochs in epochs_by_stage.items()},
        "train_seconds_per_epoch": {stage: float(np.mean([e["seconds"] for e in epochs]))
                                    for stage, epochs in epochs_by_stage.items()},
    }
