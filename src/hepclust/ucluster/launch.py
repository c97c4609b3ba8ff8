"""What a jets training rule runs: its stage in this process, or in several under torchrun."""

import logging
import os
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

from hepclust.io.jsonio import write_json
from hepclust.ucluster import stage as stages
from hepclust.workflow import torch_device

logger = logging.getLogger(__name__)


def run_stage(stage: str, processes: int, *, train, model, history, checkpoints,
              settings: dict, seed: int, device: str, threads: int, log,
              pretrained=None) -> None:
    """Train `stage` (one of `stages.STAGES`) and write its model and history. With more
    than one process, torchrun starts them on this node, `threads` CPU threads shared among
    them; their output goes to this process's stdout and stderr, the rule's `log`."""
    paths = {"train": train, "pretrained": pretrained, "model": model, "history": history,
             "checkpoints": checkpoints}
    if processes == 1:
        stages.train_stage(stage, **paths, settings=settings, seed=seed,
                           device=torch_device(device, threads))
        return
    per_process = max(1, threads // processes)
    with tempfile.TemporaryDirectory() as tmp:
        settings_file = Path(tmp) / "settings.json"
        write_json(settings, settings_file)
        command = [sys.executable, "-m", "torch.distributed.run", "--standalone",
                   "--nproc-per-node", str(processes), "-m", "hepclust.ucluster.stage",
                   *stages.arguments(stage, **paths, settings_file=settings_file, seed=seed,
                                     device=device, threads=per_process)]
        logger.info("%s in %d processes: %s", stage, processes, shlex.join(command))
        sys.stdout.flush()
        sys.stderr.flush()
        # torchrun otherwise sets OMP_NUM_THREADS=1 itself, with a warning.
        environment = {**os.environ, "OMP_NUM_THREADS": str(per_process)}
        finished = subprocess.run(command, env=environment, check=False)
    if finished.returncode != 0:
        raise RuntimeError(f"{stage}: torchrun with {processes} processes exited with status "
                           f"{finished.returncode}; the processes' output is in {log}")
