"""What every rule script shares: its log."""

import logging
import os
import sys
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def logged_to(path: str | Path):
    """Send this process's stdout and stderr (Python's and C libraries' alike, Pythia and
    fastjet print from C++) to `path`, and set up `logging` there."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with Path(path).open("w") as log:
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        logging.basicConfig(level=logging.INFO, stream=sys.stderr, force=True,
                            format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        try:
            yield
        except BaseException:
            logging.exception("rule failed")
            raise
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])


def torch_device(name: str, threads: int = 1):
    """The torch device the config names, failing clearly if it is absent; CPU work uses
    `threads` threads (the rule's)."""
    import torch

    torch.set_num_threads(max(1, threads))
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"config device {name!r}: this torch ({torch.__version__}) sees no "
                           "CUDA device; set device: cpu or install a CUDA build")
    return device
