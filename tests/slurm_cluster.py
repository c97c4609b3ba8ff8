"""A throwaway single-node SLURM on loopback, for tests/test_slurm.py.

It runs Debian's `slurmctld`, `slurmd` and `munge` packages as root, entirely from a
temporary directory: its own munge key and socket, its own configuration (pointed to by
SLURM_CONF), free ports on 127.0.0.1, and a test GPU whose device file is /dev/null.
"""

import os
import re
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

COMMANDS = (
    "munged", "slurmctld", "slurmd", "sbatch", "srun", "squeue", "scontrol", "scancel", "sinfo",
)
NODE = "localhost"
START_TIMEOUT_S = 60
CLIENT_TIMEOUT_S = 30

# Memory is not a consumable here (CR_Core) and slurmd takes the node's declared size
# (config_overrides), so this only has to exceed the largest mem_mb a rule declares.
NODE_MEMORY_MB = 16000

SLURM_CONF = """\
ClusterName=hepclust-test
SlurmctldHost={node}(127.0.0.1)
SlurmctldPort={ctld_port}
SlurmdPort={slurmd_port}
CommunicationParameters=NoInAddrAny,NoCtldInAddrAny
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={munge_socket}
StateSaveLocation={root}/state
SlurmdSpoolDir={root}/spool
SlurmctldPidFile={root}/slurmctld.pid
SlurmdPidFile={root}/slurmd.pid
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
# No accounting database: finished jobs are known only while the controller keeps them.
MinJobAge=600
ReturnToService=2
SlurmdParameters=config_overrides
GresTypes=gpu
NodeName={node} NodeAddr=127.0.0.1 CPUs={cpus} RealMemory={memory} Gres=gpu:1 State=UNKNOWN
PartitionName=debug Nodes={node} Default=YES MaxTime=INFINITE State=UP
"""

GRES_CONF = "NodeName={node} Name=gpu File=/dev/null\n"


def slurm_available() -> bool:
    """Whether this process can start a cluster: root, with the SLURM and munge binaries."""
    return os.geteuid() == 0 and all(shutil.which(c) for c in COMMANDS)


@contextmanager
def single_node_slurm(root: Path) -> Iterator[dict[str, str]]:
    """Start munged, slurmctld and slurmd under `root` and wait until the node is idle.

    Yields the environment that points SLURM's commands at this cluster. On the way out,
    whether the body succeeded or not, cancels any jobs left and stops the three daemons
    by the PIDs it started them with.
    """
    env = _write_config(root)
    munge = root / "munge"
    with ExitStack() as stack:
        daemons = []

        def start(*command: str | Path) -> None:
            daemons.append(_start(stack, root, *command, env=env))

        def wait_for(ready: Callable[[], bool], what: str) -> None:
            deadline = time.monotonic() + START_TIMEOUT_S
            while not ready():
                stopped = [d.args[0] for d in daemons if d.poll() is not None]
                if stopped or time.monotonic() > deadline:
                    raise RuntimeError(f"waiting for {what}, stopped: {stopped}\n{_logs(root)}")
                time.sleep(0.5)

        # --force: munged refuses a socket in a directory only root can enter, like
        # pytest's temporary ones, which is no concern for a cluster of one user.
        start("munged", "--foreground", "--force", f"--key-file={munge / 'munge.key'}",
              f"--socket={munge / 'munge.socket'}", f"--pid-file={munge / 'munged.pid'}",
              f"--seed-file={munge / 'munged.seed'}", f"--log-file={munge / 'munged.log'}")
        wait_for((munge / "munge.socket").exists, "munged's socket")
        start("slurmctld", "-D", "-i", "-f", root / "slurm.conf")
        start("slurmd", "-D", "-N", NODE, "-f", root / "slurm.conf")
        stack.callback(_cancel_jobs, env)
        wait_for(lambda: _client(env, "sinfo", "-h", "-n", NODE, "-o", "%T") == "idle",
                 "an idle node")
        yield env


def jobs(env: dict[str, str]) -> dict[int, dict[str, str]]:
    """Every job the controller knows (finished ones for MinJobAge), by id: the fields of
    `scontrol show job` (JobState, Comment, TresPerJob, ...)."""
    listing = _client(env, "scontrol", "--oneliner", "show", "job")
    fields = (dict(re.findall(r"(\w+)=(\S*)", line)) for line in listing.splitlines())
    return {int(job["JobId"]): job for job in fields if "JobId" in job}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _write_config(root: Path) -> dict[str, str]:
    """Write the munge key and SLURM's files; return the environment for the clients."""
    for sub in ("state", "spool", "munge"):
        (root / sub).mkdir()
    key = root / "munge" / "munge.key"
    key.write_bytes(os.urandom(1024))
    key.chmod(0o400)
    values = dict(
        node=NODE, root=root, cpus=os.cpu_count() or 1, memory=NODE_MEMORY_MB,
        ctld_port=_free_port(), slurmd_port=_free_port(),
        munge_socket=root / "munge" / "munge.socket",
    )
    (root / "slurm.conf").write_text(SLURM_CONF.format(**values))
    (root / "gres.conf").write_text(GRES_CONF.format(**values))
    # Inside a job, the SLURM plugin's jobstep drops every SLURM_* variable, SLURM_CONF
    # too, before it calls srun; a real cluster's srun reads /etc/slurm, ours this shim.
    shim = root / "bin" / "srun"
    shim.parent.mkdir()
    srun = shutil.which("srun")
    shim.write_text(f'#!/bin/sh\nSLURM_CONF={root / "slurm.conf"} exec {srun} "$@"\n')
    shim.chmod(0o755)
    return {**os.environ, "SLURM_CONF": str(root / "slurm.conf"),
            "PATH": f"{shim.parent}{os.pathsep}{os.environ['PATH']}"}


def _start(stack: ExitStack, root: Path, *command: str | Path,
           env: dict[str, str]) -> subprocess.Popen:
    """Start a daemon in the foreground, so that its PID is ours and it logs to
    `root/<daemon>.log`, and stop it when `stack` closes."""
    with (root / f"{command[0]}.log").open("ab") as out:
        process = subprocess.Popen([str(c) for c in command], stdout=out,
                                   stderr=subprocess.STDOUT, env=env, start_new_session=True)
    stack.callback(_stop, process)
    return process


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _client(env: dict[str, str], *command: str) -> str:
    """A SLURM command's output, or "" when the controller does not answer."""
    try:
        result = subprocess.run(command, capture_output=True, text=True, env=env,
                                timeout=CLIENT_TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired:
        return ""
    return result.stdout.strip() if result.returncode == 0 else ""


def _cancel_jobs(env: dict[str, str]) -> None:
    """Cancel what a failed run left and wait for slurmd to end its job steps."""
    _client(env, "scancel", "--full", "--user", "root")
    deadline = time.monotonic() + CLIENT_TIMEOUT_S
    while _client(env, "squeue", "-h", "-t", "PD,R,CG,S") and time.monotonic() < deadline:
        time.sleep(1)


def _logs(root: Path) -> str:
    return "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-2000:]}"
                     for p in sorted(root.glob("*.log")))
