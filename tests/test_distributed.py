"""Training in several processes (gloo on the CPU): the same model as one process on the full
batches, one checkpoint writer, and the jets stages launched through torchrun."""

import math
import os
import socket
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp
import yaml
from torch import nn

from hepclust.io.jsonio import read_json
from hepclust.ucluster import distributed, training
from hepclust.ucluster.jets import load_model, prepare, save_arrays
from hepclust.ucluster.launch import run_stage
from hepclust.ucluster.training import batches, train

ROOT = Path(__file__).resolve().parents[1]
TINY_SETTINGS = yaml.safe_load((ROOT / ".test/config/config.yaml").read_text())["jet_clustering"]
WORLD = 2


def toy_data():
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(40, 3, generator=generator)
    return {"x": x, "y": (x.sum(dim=1) > 0).long()}


def toy_run(checkpoints, epochs):
    """A linear model and an extra trained bias; the loss is a mean over the examples."""
    torch.manual_seed(0)
    model = nn.Linear(3, 2)
    extra = nn.Parameter(torch.zeros(2))

    def loss(batch, epoch):
        return nn.functional.cross_entropy(model(batch["x"]) + extra, batch["y"])

    history = train(model, toy_data(), loss, epochs, 8, checkpoints, seed=3,
                    device=torch.device("cpu"), extra=[extra])
    return [*model.parameters(), extra], history


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def toy_worker(rank, port, checkpoints, out):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank),
                      LOCAL_RANK=str(rank), WORLD_SIZE=str(WORLD))
    torch.set_num_threads(1)
    save = training._save

    def recorded_save(*args):
        with (out / f"saves_rank{rank}.txt").open("a") as record:
            record.write("saved\n")
        save(*args)

    training._save = recorded_save
    with distributed.process_group(torch.device("cpu")):
        toy_run(checkpoints, epochs=2)
        parameters, history = toy_run(checkpoints, epochs=3)  # resumes after epoch 2
    torch.save({"parameters": [p.detach() for p in parameters], "history": history},
               out / f"rank{rank}.pt")


def test_two_processes_train_the_model_one_process_trains_on_full_batches(tmp_path):
    mp.spawn(toy_worker, args=(free_port(), tmp_path / "checkpoints", tmp_path), nprocs=WORLD)
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in range(WORLD)]
    single, single_history = toy_run(tmp_path / "single", epochs=3)

    for a, b, alone in zip(ranks[0]["parameters"], ranks[1]["parameters"], single, strict=True):
        assert torch.equal(a, b)
        torch.testing.assert_close(a, alone.detach(), rtol=1e-5, atol=1e-6)
    for history in (ranks[0]["history"], ranks[1]["history"]):
        assert [h["examples"] for h in history] == [40, 40, 40]
        assert [h["loss"] for h in history] == pytest.approx(
            [h["loss"] for h in single_history], rel=1e-5)
    assert (tmp_path / "saves_rank0.txt").read_text().count("saved") == 3
    assert not (tmp_path / "saves_rank1.txt").exists()
    assert (tmp_path / "checkpoints" / "last.pt").is_file()


def test_the_ranks_split_each_batch_and_drop_a_last_batch_too_small_to_split():
    data = {"i": torch.arange(41)}
    cpu = torch.device("cpu")
    whole = batches(data, 8, seed=1, epoch=0, device=cpu)
    shards = [batches(data, 8, seed=1, epoch=0, device=cpu, rank=r, world=2) for r in (0, 1)]
    assert len(whole) == 6
    assert len(shards[0]) == len(shards[1]) == 5  # the last batch holds one jet
    for full, first, second in zip(whole, *shards, strict=False):
        assert sorted([*first["i"].tolist(), *second["i"].tolist()]) == sorted(full["i"].tolist())


def stage_paths(tmp_path, name):
    return {"model": tmp_path / name / "model.pt", "history": tmp_path / name / "history.json",
            "checkpoints": tmp_path / name / "checkpoints"}


def test_a_jets_stage_trains_under_torchrun_and_rank_0_writes_its_outputs(
        tmp_path, toy_jets, capfd):
    train_arrays, _, _ = prepare(toy_jets, max_particles=TINY_SETTINGS["max_particles"],
                                 train_fraction=TINY_SETTINGS["train_fraction"],
                                 mass_window=TINY_SETTINGS["mass_window"], seed=5)
    save_arrays(tmp_path / "train.npz", train_arrays)
    paths = stage_paths(tmp_path, "pretrain")
    run_stage("jets-pretrain", WORLD, train=tmp_path / "train.npz", **paths,
              settings=TINY_SETTINGS, seed=5, device="cpu", threads=WORLD,
              log=tmp_path / "log")

    assert sorted(p.name for p in (tmp_path / "pretrain").iterdir()) == [
        "checkpoints", "history.json", "model.pt"]
    history = read_json(paths["history"])
    assert len(history) == TINY_SETTINGS["pretrain_epochs"]
    assert all(math.isfinite(epoch["loss"]) for epoch in history)
    assert [epoch["examples"] for epoch in history] == [len(train_arrays["label"])] * 2
    model, centroids = load_model(paths["model"], torch.device("cpu"))
    assert model.embedding_size == TINY_SETTINGS["embedding_size"]
    assert centroids.numel() == 0
    output = capfd.readouterr()
    assert (output.out + output.err).count("pretrain epoch 1/2: loss") == 1  # rank 0 logs alone


def test_a_failed_torchrun_names_the_stage_and_the_log(tmp_path):
    failure = r"jets-supervised: torchrun .* exited with status 1.*run\.log"
    with pytest.raises(RuntimeError, match=failure):
        run_stage("jets-supervised", WORLD, train=tmp_path / "missing.npz",
                  **stage_paths(tmp_path, "supervised"), settings=TINY_SETTINGS, seed=5,
                  device="cpu", threads=WORLD, log=tmp_path / "run.log")
