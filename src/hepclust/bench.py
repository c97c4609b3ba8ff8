"""Benchmarks of the data stage, measured on the pipeline's own outputs."""

import tempfile
import time
from pathlib import Path

from hepclust.io.formats import convert
from hepclust.io.hls4ml import write_hls4ml
from hepclust.io.jsonio import read_json
from hepclust.io.parquet import read_table
from hepclust.io.schema import JETS


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
        rows = convert(source, Path(scratch) / "jets.parquet")
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
