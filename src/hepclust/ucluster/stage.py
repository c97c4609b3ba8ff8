"""One jets training stage, in this process or in each process of a torchrun launch:

    torchrun --standalone --nproc-per-node 2 -m hepclust.ucluster.stage jets-pretrain \\
        --train train.npz --model pretrained.pt --history history.json \\
        --checkpoints checkpoints/ --settings settings.json --seed 1 --device cpu

Every process trains; rank 0 alone writes the model and the history.
"""

import argparse
import logging
import sys
from pathlib import Path

import torch

from hepclust.io.jsonio import read_json, write_json
from hepclust.ucluster import distributed, jets, model_file, phases
from hepclust.workflow import torch_device

STAGES = ("jets-pretrain", "jets-ucluster", "jets-supervised")


def train_stage(stage: str, *, train: str | Path, model: str | Path, history: str | Path,
                checkpoints: str | Path, settings: dict, seed: int, device: torch.device,
                pretrained: str | Path | None = None) -> None:
    """Train `stage` on the arrays at `train` and write its model and history; `pretrained`
    is the pretrained model that jets-ucluster starts from (its weights and its optimiser
    state). `settings` is the stage's part of the config's jet_clustering section; it
    becomes the typed settings of the stage's function here."""
    arrays = jets.load_arrays(train)
    centroids, optimizer = None, None
    if stage == "jets-pretrain":
        network = jets.network_settings(settings)
        model_net, trained, optimizer = jets.pretrain(
            arrays, network=network, phase=phases.pretrain_settings(settings),
            gamma=settings["gamma"], seed=seed, device=device, checkpoints=checkpoints,
            precise_norm=settings.get("precise_norm_statistics", False))
        classes = jets.MASS_CLASSES
    elif stage == "jets-ucluster":
        model_net, _ = jets.load_model(pretrained, device)
        network = jets.network_settings(settings)
        centroids, trained = jets.train_clustering(
            model_net, arrays, phase=phases.cluster_settings(settings),
            clusters=settings["clusters"], gamma=settings["gamma"], seed=seed, device=device,
            checkpoints=checkpoints, start_optimizer=model_file.optimizer(pretrained))
        classes = jets.MASS_CLASSES
    elif stage == "jets-supervised":
        network = jets.network_settings(settings, "supervised_")
        classes = len(settings["classes"])
        model_net, trained = jets.train_supervised(
            arrays, network=network, classes=classes, epochs=settings["supervised_epochs"],
            batch_size=settings["batch_size"], schedule=phases.schedule(settings), seed=seed,
            device=device, checkpoints=checkpoints,
            precise_norm=settings.get("precise_norm_statistics", False),
            average_epochs=settings.get("supervised_average_epochs", 1))
    else:
        raise ValueError(f"unknown stage {stage!r}; one of {', '.join(STAGES)}")
    if distributed.rank_and_world()[0] == 0:
        jets.save_model(model, model_net, network, classes, centroids, trained, optimizer)
        write_json(trained, history)


def arguments(stage: str, *, train, model, history, checkpoints, settings_file, seed: int,
              device: str, threads: int, pretrained=None) -> list[str]:
    """The command-line arguments of `main` for these values."""
    optional = ["--pretrained", str(pretrained)] if pretrained is not None else []
    return [stage, "--train", str(train), *optional, "--model", str(model),
            "--history", str(history), "--checkpoints", str(checkpoints),
            "--settings", str(settings_file), "--seed", str(seed), "--device", device,
            "--threads", str(threads)]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m hepclust.ucluster.stage",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("stage", choices=STAGES)
    parser.add_argument("--train", required=True, help="train.npz of the prepared jets")
    parser.add_argument("--pretrained", help="pretrained model (jets-ucluster only)")
    parser.add_argument("--model", required=True, help="model file to write")
    parser.add_argument("--history", required=True, help="history JSON to write")
    parser.add_argument("--checkpoints", required=True, help="checkpoint directory")
    parser.add_argument("--settings", required=True, help="JSON of jet_clustering settings")
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--device", default="cpu", help="cpu, or cuda: one GPU per process")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads per process")
    return parser


def main(argv: list[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    if args.stage == "jets-ucluster" and args.pretrained is None:
        raise SystemExit("jets-ucluster needs --pretrained")
    with distributed.process_group(torch_device(args.device, args.threads)) as device:
        rank, _ = distributed.rank_and_world()
        logging.basicConfig(level=logging.INFO if rank == 0 else logging.WARNING,
                            stream=sys.stderr, force=True,
                            format=f"%(asctime)s rank {rank} %(levelname)s %(name)s: "
                                   "%(message)s")
        train_stage(args.stage, train=args.train, pretrained=args.pretrained,
                    model=args.model, history=args.history, checkpoints=args.checkpoints,
                    settings=read_json(args.settings), seed=args.seed, device=device)


if __name__ == "__main__":
    main()
