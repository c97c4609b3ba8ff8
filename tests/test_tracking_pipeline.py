"""The glue of the tracking clustering GNN's workflow: events, checkpoints, the chained
pipeline, the alternatives, scoring, summaries and the scaling measurement."""

import gc
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
import yaml

from hepclust.errors import InputError
from hepclust.io.schema import TRACKML_EVENT_HITS, TRACKML_EVENT_PARTICLES
from hepclust.tracking.alternatives import BaselineSettings, baseline_tracks, curvature_of
from hepclust.tracking.baselines import connected_components
from hepclust.tracking.checkpoints import load_graphs, load_module, save_graphs, save_module
from hepclust.tracking.edge_filter import EdgeFilter
from hepclust.tracking.embedding import HitEmbedding
from hepclust.tracking.evaluation import (
    all_pairs_row,
    combine_binned,
    score_tracks,
    submission,
    summarise_graphs,
    write_submission,
)
from hepclust.tracking.events import EventTables, event_name, read_events, split_events
from hepclust.tracking.gnn import ClusteringGNN
from hepclust.tracking.hit_features import CELL_COLUMNS, HIT_FEATURES, detector_layers
from hepclust.tracking.layer_union import layer_union, mutual_best_links
from hepclust.tracking.links import LinkScorer
from hepclust.tracking.pipeline import (
    STAGES,
    ClusteringSettings,
    GraphSettings,
    Models,
    initial_partition,
    message_edges,
    reconstruct,
)
from hepclust.tracking.refinement import EdgeClassifier
from hepclust.tracking.scaling import (
    PeakMemory,
    _memory_exponent,
    fit_exponent,
    growth_per_step,
    scaling_benchmark,
)
from hepclust.tracking.score import score_event
from hepclust.tracking.settings import (
    baseline_settings,
    clustering_settings,
    embedding_settings,
    graph_settings,
    refinement_settings,
)
from hepclust.tracking.split_stop import Split, Stop
from straight_tracks import two_straight_tracks

TINY = Path(__file__).resolve().parents[1] / ".test" / "config" / "config.yaml"


def synthetic_hits(event_id: int, particles: int = 4, hits_per_particle: int = 6,
                   noise: int = 3) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Straight tracks from the origin, one per particle, on layers 1..n, plus noise."""
    rng = np.random.default_rng(event_id)
    rows = []
    for p in range(1, particles + 1):
        phi, theta = rng.uniform(-math.pi, math.pi), rng.uniform(0.5, 2.6)
        for layer in range(1, hits_per_particle + 1):
            r = 40.0 * layer
            rows.append((r * math.cos(phi), r * math.sin(phi), r / math.tan(theta), layer, p))
    for _ in range(noise):
        rows.append((*rng.uniform(-300, 300, size=3), 1, 0))
    x, y, z, layer, particle = (np.array(c) for c in zip(*rows, strict=True))
    weight = np.where(particle > 0, 1.0, 0.0)
    hits = pd.DataFrame({
        "event_id": event_id, "hit_id": np.arange(1, len(x) + 1), "x": x.astype(np.float32),
        "y": y.astype(np.float32), "z": z.astype(np.float32), "volume_id": np.int8(8),
        "layer_id": layer.astype(np.int8), "particle_id": particle.astype(np.int64),
        "weight": (weight / weight.sum()).astype(np.float32)})
    momentum = rng.uniform(0.3, 5.0, size=particles)
    particles_table = pd.DataFrame({
        "event_id": event_id, "particle_id": np.arange(1, particles + 1),
        "px": momentum, "py": np.zeros(particles), "pz": momentum * 0.5})
    return hits, particles_table


def synthetic_event(event_id: int = 1, **kwargs) -> EventTables:
    hits, particles = synthetic_hits(event_id, **kwargs)
    return EventTables(event_id, hits, particles)


def write_parquet_events(directory, event_ids, break_event=None, cells=False):
    """hits.parquet and particles.parquet of synthetic events, in the pipeline's schema
    (with cell-shape columns if `cells`)."""
    hits, particles = zip(*(synthetic_hits(e) for e in event_ids), strict=True)
    hits, particles = pd.concat(hits), pd.concat(particles)
    if cells:
        hits = hits.assign(cell_count=np.float32(3), cell_value=np.float32(0.5),
                           cell_theta_u=np.float32(0.2), cell_theta_v=np.float32(-0.1))
    if break_event is not None:
        hits.loc[hits["event_id"] == break_event, "cell_value" if cells else "z"] = np.nan
    schema = TRACKML_EVENT_HITS
    for column in CELL_COLUMNS if cells else ():
        schema = schema.append(pa.field(column, pa.float32()))
    full_hits = {f.name: np.zeros(len(hits), dtype=f.type.to_pandas_dtype()) for f in schema}
    full_hits.update({c: hits[c].to_numpy() for c in hits.columns})
    full_particles = {f.name: np.zeros(len(particles), dtype=f.type.to_pandas_dtype())
                      for f in TRACKML_EVENT_PARTICLES}
    full_particles.update({c: particles[c].to_numpy() for c in particles.columns})
    pq.write_table(pa.Table.from_pydict(full_hits, schema), directory / "hits.parquet")
    pq.write_table(pa.Table.from_pydict(full_particles, TRACKML_EVENT_PARTICLES),
                   directory / "particles.parquet")
    return directory / "hits.parquet", directory / "particles.parquet"


def tiny_models(in_dim: int = len(HIT_FEATURES), embedding_dim: int = 4) -> Models:
    torch.manual_seed(0)
    return Models(embedding=HitEmbedding(in_dim, (8,), embedding_dim),
                  refinement=EdgeClassifier(in_dim, (8,)),
                  gnn=ClusteringGNN(in_dim + embedding_dim, hidden=8, out_channels=3, layers=2,
                                    kernel_hidden=4, aggr="mean"),
                  split=Split(3, hidden=8, layers=2), stop=Stop(3, hidden=8, layers=2),
                  links=LinkScorer(hidden=4), edge_filter=EdgeFilter(in_dim, (4,)))


# ---- events -------------------------------------------------------------------------------

def test_split_is_seeded_disjoint_and_sorted():
    ids = np.arange(1, 21)
    first = split_events(ids, 12, 5, seed=3)
    assert first == split_events(ids, 12, 5, seed=3)
    assert first != split_events(ids, 12, 5, seed=4)
    assert len(first["train"]) == 12
    assert len(first["test"]) == 5
    assert not set(first["train"]) & set(first["test"])
    assert first["train"] == sorted(first["train"])


def test_split_names_the_file_when_events_are_too_few():
    with pytest.raises(InputError, match=r"hits\.parquet: holds 3 events"):
        split_events(np.array([1, 2, 3]), 2, 2, seed=0, source="hits.parquet")


def test_read_events_returns_each_event_and_rejects_nan_positions(tmp_path):
    hits, particles = write_parquet_events(tmp_path, [1, 2, 3])
    events = read_events(hits, particles, [3, 1])
    assert [e.event_id for e in events] == [3, 1]
    assert [e.name for e in events] == ["event000000003", "event000000001"]
    assert (events[0].hits["event_id"] == 3).all()
    assert len(events[0].hits) == 4 * 6 + 3
    assert set(events[1].particles["particle_id"]) == {1, 2, 3, 4}
    with pytest.raises(InputError, match="event 9 has 0 hit"):
        read_events(hits, particles, [9])
    hits, particles = write_parquet_events(tmp_path, [1, 2], break_event=2)
    with pytest.raises(InputError, match=r"hits\.parquet: column z has 27 NaN"):  # on reading
        read_events(hits, particles, [1, 2])


def test_read_events_keeps_the_cell_shapes_the_features_use(tmp_path):
    hits, particles = write_parquet_events(tmp_path, [1, 2], cells=True)
    features = read_events(hits, particles, [1])[0].tracking_event().features
    cells = features[:, HIT_FEATURES.index("log_cells")]
    torch.testing.assert_close(cells, torch.full_like(cells, math.log(4.0)))
    assert bool((features[:, HIT_FEATURES.index("theta_u")] == 0.2).all())
    hits, particles = write_parquet_events(tmp_path, [1, 2], break_event=2, cells=True)
    with pytest.raises(InputError, match="event 2: column cell_value has 27 NaN"):
        read_events(hits, particles, [1, 2])


def test_event_names_follow_trackml():
    assert event_name(1000) == "event000001000"


# ---- checkpoints ----------------------------------------------------------------------------

def test_a_saved_module_comes_back_identical_with_weights_only(tmp_path):
    model = HitEmbedding(8, (5, 6), 3)
    save_module(tmp_path / "m.pt", "embedding", model,
                {"in_dim": 8, "hidden": [5, 6], "embedding_dim": 3}, [{"loss": 1.0}])
    loaded = load_module(tmp_path / "m.pt", "embedding")
    features = torch.randn(7, 8)
    torch.testing.assert_close(loaded(features), model(features))
    with pytest.raises(InputError, match="holds a 'embedding' module, expected 'gnn'"):
        load_module(tmp_path / "m.pt", "gnn")
    with pytest.raises(InputError, match="no such file"):
        load_module(tmp_path / "absent.pt", "gnn")


def test_graphs_round_trip_and_missing_events_are_named(tmp_path):
    graphs = {4: torch.tensor([[0, 1], [1, 2]]), 9: torch.zeros((2, 0), dtype=torch.int64)}
    save_graphs(tmp_path / "g.pt", graphs)
    loaded = load_graphs(tmp_path / "g.pt", [9, 4])
    assert list(loaded) == [9, 4]
    assert torch.equal(loaded[4], graphs[4])
    with pytest.raises(InputError, match=r"no graph for event\(s\) \[5\]"):
        load_graphs(tmp_path / "g.pt", [5])


# ---- pipeline -------------------------------------------------------------------------------

def test_message_edges_carry_each_pair_both_ways():
    pairs = torch.tensor([[0, 1], [2, 3]])
    assert message_edges(pairs).tolist() == [[0, 1, 2, 3], [2, 3, 0, 1]]


def test_initial_partition_is_the_components_or_one_cluster():
    refined = torch.tensor([[0, 3], [1, 4]])
    components = initial_partition(refined, 6, ClusteringSettings(initial="components"), "cpu")
    assert components[0] == components[1]
    assert components[3] == components[4]
    assert len(set(components.tolist())) == 4
    assert initial_partition(refined, 6, ClusteringSettings(initial="event"), "cpu") is None
    with pytest.raises(ValueError, match="initial"):
        initial_partition(refined, 6, ClusteringSettings(initial="tracks"), "cpu")
    with pytest.raises(ValueError, match="probabilities"):
        initial_partition(refined, 6, ClusteringSettings(initial="resplit"), "cpu")


def chain(start: int, length: int) -> list[list[int]]:
    return [[start + i, start + i + 1] for i in range(length - 1)]


def test_resplit_cuts_the_weakest_edge_of_a_component_too_large_for_a_track():
    # Two chains of 4 hits joined by one weak edge (3-4), and a chain of 5 left alone.
    edges = torch.tensor([*chain(0, 4), [3, 4], *chain(4, 4), *chain(8, 5)]).T
    probability = torch.tensor([0.99] * 3 + [0.96] + [0.99] * 3 + [0.5] * 4)
    settings = ClusteringSettings(initial="resplit", resplit_thresholds=(0.97, 0.99),
                                  resplit_max_hits=5)
    labels = initial_partition(edges, 13, settings, "cpu", probability).numpy()
    assert len(set(labels[:4])) == 1
    assert len(set(labels[4:8])) == 1
    assert labels[3] != labels[4]
    assert len(set(labels[8:])) == 1  # 5 hits: small enough, its weak edges kept
    assert len(set(labels)) == 3
    unsorted = ClusteringSettings(initial="resplit", resplit_thresholds=(0.99, 0.97))
    with pytest.raises(ValueError, match="increase"):
        initial_partition(edges, 13, unsorted, "cpu", probability)


def test_layer_union_keeps_out_a_fake_edge_that_would_put_two_hits_on_one_layer():
    layers, positions = two_straight_tracks()
    true = [*chain(0, 5), *chain(5, 5)]
    edges = np.array([*true, [2, 8]]).T  # the fake joins layer 3 of one to layer 4 of the other
    probability = np.array([0.9] * len(true) + [0.85])
    labels = layer_union(edges, probability, layers, positions, same_layer_mm=15.0)
    assert labels.tolist() == [0] * 5 + [1] * 5
    assert len(set(connected_components(edges, 10).tolist())) == 1  # components merge them
    # A weak true edge joins what no other layer contradicts: no threshold cuts it.
    weak = probability.copy()
    weak[0] = 0.01
    assert layer_union(edges, weak, layers, positions, 15.0).tolist() == labels.tolist()


def test_layer_union_runs_without_the_cyclic_garbage_collector():
    # Thousands of hits allocate enough dicts to set the collector off; none may run
    # inside, and it is on again after.
    collections = []

    def count(phase: str, info: dict) -> None:
        collections.append(phase)

    tracks = 2_000
    layers = np.tile(np.arange(1, 6), tracks)
    positions = np.array([[100.0 * layer, 50.0 * track, 0.0] for track in range(tracks)
                          for layer in range(1, 6)])
    edges = np.array([pair for track in range(tracks) for pair in chain(5 * track, 5)]).T
    gc.callbacks.append(count)
    try:
        labels = layer_union(edges, np.full(edges.shape[1], 0.9), layers, positions, 15.0)
    finally:
        gc.callbacks.remove(count)
    assert collections == []
    assert gc.isenabled()
    assert labels.tolist() == np.repeat(np.arange(tracks), 5).tolist()


def test_mutual_best_links_go_first_and_keep_a_fake_from_crossing_over():
    # Tracks 0-1-2 and 3-4-5 on layers 1-3; hits 1 and 4 lie 10 mm apart on layer 2, and a
    # fake 1-5 beats the true 1-2 at hit 1 but loses to the true 4-5 at hit 5.
    layers = np.array([1, 2, 3, 1, 2, 3])
    positions = np.array([[100.0, 0, 0], [200.0, 0, 0], [300.0, 0, 0],
                          [100.0, 100, 0], [200.0, 10, 0], [300.0, 100, 0]])
    edges = np.array([[0, 1], [1, 2], [3, 4], [4, 5], [1, 5]]).T
    probability = np.array([0.9, 0.9, 0.9, 0.97, 0.95])
    assert mutual_best_links(edges, probability, layers).tolist() == [True, False, True,
                                                                      True, False]
    best_first = layer_union(edges, probability, layers, positions, 15.0, best_links_first=True)
    assert best_first.tolist() == [0, 0, 0, 1, 1, 1]
    plain = layer_union(edges, probability, layers, positions, 15.0)
    assert plain[1] == plain[5]  # by probability alone the fake goes in


def test_layer_union_joins_same_layer_hits_aligned_with_the_origin():
    # A track at a shallow angle crosses layer 2 in two overlapping modules: hits 1 and 2
    # lie 30 mm apart along the line of sight. Hit 3 lies 30 mm from hit 1 across it.
    layers = np.array([1, 2, 2, 2])
    positions = np.array([[10.0, 0, 100], [20.0, 0, 200], [23.0, 0, 230], [20.0, 30, 200]])
    edges = np.array([[0, 1], [0, 2]]).T
    probability = np.array([0.9, 0.8])
    assert layer_union(edges, probability, layers, positions, 15.0).tolist() == [0, 0, 1, 2]
    aligned = layer_union(edges, probability, layers, positions, 15.0, aligned_mm=60.0)
    assert aligned.tolist() == [0, 0, 0, 1]
    across = np.array([[0, 1], [0, 3]]).T
    assert layer_union(across, probability, layers, positions, 15.0,
                       aligned_mm=60.0).tolist() == [0, 0, 1, 2]
    assert layer_union(edges, probability, layers, positions, 15.0, aligned_mm=20.0,
                       ).tolist() == [0, 0, 1, 2]  # 30 mm: farther than aligned_mm


def test_one_link_per_side_refuses_a_second_outward_join_the_layer_rule_allows():
    # Track 0-1-2-3 on layers 1, 2, 3, 5 (its layer-4 hit is missing); track 4-5 on
    # layers 4 and 6. The fake 2-4 puts no two hits on one layer, but hit 2 already
    # continues outward to hit 3.
    layers = np.array([1, 2, 3, 5, 4, 6])
    positions = np.array([[100.0, 0, 0], [200.0, 0, 0], [300.0, 0, 0], [500.0, 0, 0],
                          [400.0, 100, 0], [600.0, 100, 0]])
    edges = np.array([[0, 1], [1, 2], [3, 2], [4, 5], [2, 4]]).T  # 3-2: given outer first
    probability = np.array([0.9, 0.9, 0.95, 0.9, 0.9])
    assert len(set(layer_union(edges, probability, layers, positions, 15.0).tolist())) == 1
    chained = layer_union(edges, probability, layers, positions, 15.0, one_link_per_side=True)
    assert chained.tolist() == [0, 0, 0, 0, 1, 1]
    # Hits of one layer join freely: an overlap hit beside hit 1 still joins through hit 1.
    layers, positions = np.append(layers, 2), np.vstack([positions, [200.0, 5, 0]])
    edges = np.hstack([edges, [[0, 1], [6, 6]]])
    probability = np.append(probability, [0.85, 0.8])
    chained = layer_union(edges, probability, layers, positions, 15.0, one_link_per_side=True)
    assert chained.tolist() == [0, 0, 0, 0, 1, 1, 0]
    assert layer_union(edges[:, :-1], probability[:-1], layers, positions, 15.0,
                       one_link_per_side=True)[6] != chained[0]  # 0-6: a second outward join


def test_layer_union_joins_two_hits_of_one_layer_only_when_close():
    layers = np.array([1, 2, 2, 3])
    positions = np.array([[100.0, 0, 0], [200.0, 0, 0], [200.0, 10.0, 0], [300.0, 0, 0]])
    edges = np.array([[0, 1], [1, 3], [0, 2]]).T
    probability = np.array([0.9, 0.9, 0.8])
    assert len(set(layer_union(edges, probability, layers, positions, 15.0).tolist())) == 1
    apart = layer_union(edges, probability, layers, positions, 5.0)
    assert apart.tolist() == [0, 0, 1, 0]
    alone = layer_union(np.zeros((2, 0), dtype=np.int64), np.zeros(0), layers, positions, 5.0)
    assert alone.tolist() == [0, 1, 2, 3]
    with pytest.raises(ValueError, match="same_layer_mm"):
        layer_union(edges, probability, layers, positions, -1.0)
    with pytest.raises(ValueError, match="hits"):
        initial_partition(torch.from_numpy(edges), 4, ClusteringSettings(initial="layer_union"),
                          "cpu", torch.from_numpy(probability))


def test_reconstruct_gives_every_hit_a_track_and_times_every_stage():
    event = synthetic_event()
    found = reconstruct(event.tracking_event(), tiny_models(),
                        GraphSettings(k=4, radius=None, threshold=0.0),
                        ClusteringSettings(initial="event", max_depth=4), "cpu")
    assert found.track_id.shape == (len(event.hits),)
    assert found.track_id.min() == 0
    assert set(found.seconds) == set(STAGES)
    assert found.gnn_output.shape == (len(event.hits), 3)
    # The filter's threshold is -inf until trained and the refinement's is 0: every
    # candidate edge is kept.
    assert found.filtered.shape == found.candidates.shape
    assert found.refined.shape == found.candidates.shape
    assert found.clustering.depth <= 4


def test_reconstruct_starts_split_from_the_layer_union_of_the_refined_edges():
    event = synthetic_event()
    tracking = event.tracking_event()
    found = reconstruct(tracking, tiny_models(), GraphSettings(k=4, radius=None, threshold=0.0),
                        ClusteringSettings(initial="layer_union", max_depth=4), "cpu")
    assert found.initial.shape == (len(event.hits),)
    labels = found.initial.numpy()
    assert np.bincount(labels).max() >= 3  # the union joined hits
    layers = detector_layers(tracking.features).numpy()
    positions = tracking.positions.numpy()
    for cluster in np.unique(labels):
        hits = np.flatnonzero(labels == cluster)
        for layer in np.unique(layers[hits]):
            same = positions[hits[layers[hits] == layer]]
            assert np.linalg.norm(same[:, None] - same[None], axis=2).max() <= 15.0


# ---- alternatives and scoring ---------------------------------------------------------------

def test_every_alternative_labels_every_hit():
    event = synthetic_event()
    n = len(event.hits)
    refined = torch.tensor([[0, 1], [1, 2]])
    found = baseline_tracks(*(event.hits[c].to_numpy() for c in "xyz"), torch.randn(n, 4),
                            torch.randn(n, 3), refined,
                            BaselineSettings(helix_curvatures=3))
    assert set(found) == {"dbscan_helix", "dbscan_trackml_benchmark", "dbscan_embedding",
                          "dbscan_gnn", "components_gnn", "components_refined"}
    for track_id, seconds in found.values():
        assert track_id.shape == (n,)
        assert seconds >= 0
    components = found["components_refined"][0]
    assert components[0] == components[1] == components[2] != components[3]
    scanned = baseline_tracks(*(event.hits[c].to_numpy() for c in "xyz"), torch.randn(n, 4),
                              torch.randn(n, 3), refined,
                              BaselineSettings(helix_curvatures=3, helix_z0=(-50.0, 0.0)))
    assert scanned["dbscan_helix_z0"][0].shape == (n,)
    assert curvature_of(0.3) == pytest.approx(1e-3)  # 0.3 GeV in 2 T: R = 0.5 m


def test_perfect_tracks_score_one_and_rescore_from_the_written_files(tmp_path):
    event = synthetic_event()
    perfect = event.hits["particle_id"].to_numpy().copy()
    noise = perfect == 0
    perfect[noise] = perfect.max() + 1 + np.arange(noise.sum())
    result = score_tracks(event, perfect, binned=True)
    assert result["score"] == pytest.approx(1.0)
    assert result["efficiency"] == 1.0
    assert set(result["binned"]) == {"pt", "eta"}
    write_submission(tmp_path, event, perfect)
    written = pd.read_csv(tmp_path / "event000000001.csv")
    assert list(written.columns) == ["event_id", "hit_id", "track_id"]
    truth = pd.read_csv(tmp_path / "event000000001-truth.csv")
    assert list(truth.columns) == ["hit_id", "particle_id", "weight"]
    assert score_event(truth, written) == pytest.approx(1.0)
    # One track of everything: the largest particle is no majority of it.
    assert score_tracks(event, np.zeros(len(event.hits), dtype=int))["score"] == 0.0


def test_a_submission_needs_one_track_per_hit():
    event = synthetic_event()
    with pytest.raises(ValueError, match="track ids for the 27 hits"):
        submission(event, np.zeros(3, dtype=int))


def test_binned_rates_add_the_counts_of_the_events():
    def binned(particles, efficiency):
        axis = {"edges": [0.0, 1.0, None], "particles": particles, "efficiency": efficiency,
                "tracks": [0, 0], "fake_rate": [None, None], "pure_tracks": [0, 0],
                "duplicate_rate": [None, None]}
        return {"pt": axis, "eta": axis}

    combined = combine_binned([binned([2, 0], [0.5, None]), binned([2, 4], [1.0, 0.25])])
    assert combined["pt"]["particles"] == [4, 4]
    assert combined["pt"]["efficiency"] == [0.75, 0.25]
    assert combined["eta"]["fake_rate"] == [None, None]


def test_graph_rows_add_edges_before_dividing():
    rows = [{"edges": 10, "true_edges": 5, "true_pairs": 10},
            {"edges": 30, "true_edges": 3, "true_pairs": 6}]
    row = summarise_graphs(rows)
    assert row["purity"] == pytest.approx(8 / 40)
    assert row["recall"] == pytest.approx(8 / 16)
    assert row["edges_per_event"] == 20
    pairs = all_pairs_row([4, 5], [2, 3])
    assert pairs["edges"] == 6 + 10
    assert pairs["purity"] == pytest.approx(5 / 16)
    assert pairs["recall"] == 1.0


# ---- scaling and settings -------------------------------------------------------------------

def test_fitted_exponent_of_a_power_law():
    hits = [1000, 2000, 4000, 8000]
    assert fit_exponent(hits, [3e-6 * h**1.3 for h in hits]) == pytest.approx(1.3)
    assert fit_exponent([1000, 1000], [1.0, 2.0]) is None


def test_the_scaling_benchmark_times_at_least_one_warm_pass():
    with pytest.raises(ValueError, match="warm_passes"):
        scaling_benchmark(None, None, [0.1], 1, 0, None, None, torch.device("cpu"),
                          warm_passes=0)


def test_growth_per_step_compares_the_mean_event_of_each_density():
    rows = [{"density": d, "hits": h, "seconds": s, "cpu_seconds": c}
            for d, h, s, c in [(0.2, 2000, 1.0, 1.5), (0.1, 1000, 0.4, 0.5),
                               (0.1, 1200, 0.6, 0.7), (0.2, 2400, 1.4, 1.26)]]
    (step,) = growth_per_step(rows)
    assert step["densities"] == [0.1, 0.2]
    assert step["hits_ratio"] == pytest.approx(2.0)
    assert step["seconds_ratio"] == pytest.approx(2.4)
    assert step["cpu_seconds_ratio"] == pytest.approx(2.3)
    assert step["cpu_seconds_per_hits_doubling"] == pytest.approx(2.3)
    rows[3]["hits"] = 3720  # 2.6 times the hits for 2.3 times the time
    assert growth_per_step(rows)[0]["cpu_seconds_per_hits_doubling"] == pytest.approx(
        2 ** (np.log(2.3) / np.log(2.6)))


def test_the_memory_exponent_fits_each_densitys_highest_peak():
    # The second event of each density reuses the heap the first one grew.
    rows = [{"density": d, "hits": h, "memory_mb": m}
            for d, h, m in [(0.1, 1000, 10.0), (0.1, 1000, 0.0), (0.2, 2000, 40.0),
                            (0.2, 2000, 1.0)]]
    assert _memory_exponent(rows) == pytest.approx(2.0)


def test_peak_memory_sees_a_large_allocation():
    with PeakMemory(torch.device("cpu")) as memory:
        block = np.ones(64 * 2**20 // 8)  # 64 MB, touched
        block.sum()
        del block
    assert memory.peak > 32 * 2**20


def test_the_tiny_config_builds_every_setting():
    config = yaml.safe_load(TINY.read_text())["tracking_clustering"]
    assert embedding_settings(config).hidden == tuple(config["embedding"]["hidden"])
    assert refinement_settings(config).epochs == config["refinement"]["epochs"]
    assert graph_settings(config).threshold == config["refinement"]["threshold"]
    assert clustering_settings(config).initial == config["hierarchical"]["initial"]
    assert baseline_settings(config).helix_curvatures == config["baselines"]["helix_curvatures"]
