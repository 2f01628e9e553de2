"""A real single-node SLURM on this machine for the tests (the whole recipe is this file).

`LocalSlurm` starts its own munged, slurmctld and slurmd in the foreground as children of the test
process, on their own ports, socket and state folder, so it neither needs nor disturbs a munge the
machine may already run. Clients find it through `SLURM_CONF` in `env`, except inside a job:
the SLURM executor plugin's job step drops every `SLURM_*` variable before its `srun`, so the
config must also be where SLURM looks by default: `SYSTEM_CONF` becomes a link to ours for the
cluster's lifetime (and the cluster refuses to start where that file already exists). `stop()`
cancels its jobs, ends exactly the daemons it started, by PID, and removes the link.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

PACKAGES = ["slurmctld", "slurmd", "slurm-client", "munge"]
SYSTEM_CONF = Path("/etc/slurm/slurm.conf")
PROGRAMS = ["slurmctld", "slurmd", "sbatch", "squeue", "scontrol", "munged", "mungekey"]


def missing_programs() -> list[str]:
    return [p for p in PROGRAMS if shutil.which(p, path=os.environ.get("PATH", "") + ":/usr/sbin") is None]


def ensure_installed() -> str | None:
    """Install Debian's SLURM packages if they are missing and we can; the reason we cannot, else None."""
    if not missing_programs():
        return None
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        return f"needs Debian's {' '.join(PACKAGES)} (missing {', '.join(missing_programs())}; not root with apt-get)"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", *PACKAGES]):
        result = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
        if result.returncode != 0:
            return f"{' '.join(cmd)} failed: {result.stderr.strip()[-300:]}"
    return None if not missing_programs() else f"still missing after apt-get: {', '.join(missing_programs())}"


def system_conf_in_use() -> str | None:
    """Why the default config path is not ours to use, or None."""
    if SYSTEM_CONF.exists() or SYSTEM_CONF.is_symlink():
        return f"{SYSTEM_CONF} exists (a SLURM is configured on this machine; the test brings up its own)"
    return None


def _sbin(name: str) -> str:
    return shutil.which(name, path=os.environ.get("PATH", "") + ":/usr/sbin")


def _free_port_pair() -> int:
    import socket

    for base in range(16817, 17817, 2):
        free = True
        for port in (base, base + 1):
            with socket.socket() as s:
                try:
                    s.bind(("127.0.0.1", port))
                except OSError:
                    free = False
        if free:
            return base
    raise RuntimeError("no free port pair for slurmctld and slurmd")


class LocalSlurm:
    """One node (`localhost`, this machine's CPUs and most of its memory), one partition (`debug`)."""

    def __init__(self, root: Path, cpus: int | None = None, memory_mb: int | None = None):
        self.root = root
        self.cpus = cpus or os.cpu_count() or 1
        total_mb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2**20
        self.memory_mb = memory_mb or int(total_mb * 0.8)  # above the machine's drains the node
        self.procs: list[subprocess.Popen] = []
        self.linked = False
        self.conf = root / "slurm.conf"
        self.env = {**os.environ, "SLURM_CONF": str(self.conf)}

    def start(self, timeout: float = 60) -> None:
        r = self.root
        for sub in ("state", "spool", "log", "munge"):
            (r / sub).mkdir(parents=True, exist_ok=True)
        os.chmod(r / "munge", 0o700)
        key, socket_path = r / "munge" / "munge.key", r / "munge" / "munge.socket"
        subprocess.run(
            [_sbin("mungekey"), "--create", "--force", "--keyfile", str(key)], check=True, capture_output=True
        )
        os.chmod(key, 0o600)
        munged = [
            _sbin("munged"),
            "--foreground",
            "--force",
            f"--socket={socket_path}",
            f"--key-file={key}",
            f"--pid-file={r / 'munge' / 'munged.pid'}",
            f"--seed-file={r / 'munge' / 'seed'}",
            f"--log-file={r / 'log' / 'munged.log'}",
        ]
        self._spawn(munged, "munged")
        self._wait(lambda: socket_path.exists(), timeout, "munged's socket")
        port = _free_port_pair()
        self.conf.write_text(
            "\n".join(
                [
                    "ClusterName=test",
                    "SlurmctldHost=localhost",
                    f"SlurmctldPort={port}",
                    f"SlurmdPort={port + 1}",
                    "SlurmUser=root",
                    "SlurmdUser=root",
                    "AuthType=auth/munge",
                    "CredType=cred/munge",
                    f"AuthInfo=socket={socket_path}",
                    "ProctrackType=proctrack/linuxproc",
                    "TaskPlugin=task/none",
                    "SelectType=select/cons_tres",
                    "SelectTypeParameters=CR_Core_Memory",
                    "AccountingStorageType=accounting_storage/none",
                    "JobAcctGatherType=jobacct_gather/none",
                    "JobCompType=jobcomp/none",
                    "MpiDefault=none",
                    "ReturnToService=2",
                    "MinJobAge=600",  # finished jobs stay in squeue/scontrol for the whole test
                    "KillWait=30",
                    "SchedulerType=sched/backfill",
                    f"StateSaveLocation={r / 'state'}",
                    f"SlurmdSpoolDir={r / 'spool'}",
                    f"SlurmctldPidFile={r / 'slurmctld.pid'}",
                    f"SlurmdPidFile={r / 'slurmd.pid'}",
                    f"SlurmctldLogFile={r / 'log' / 'slurmctld.log'}",
                    f"SlurmdLogFile={r / 'log' / 'slurmd.log'}",
                    f"NodeName=localhost NodeAddr=127.0.0.1 CPUs={self.cpus} RealMemory={self.memory_mb} State=UNKNOWN",
                    "PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP",
                    "",
                ]
            )
        )
        reason = system_conf_in_use()
        if reason:
            raise RuntimeError(reason)
        SYSTEM_CONF.parent.mkdir(parents=True, exist_ok=True)
        SYSTEM_CONF.symlink_to(self.conf)
        self.linked = True
        self._spawn([_sbin("slurmctld"), "-D", "-i", "-f", str(self.conf)], "slurmctld")
        self._wait(
            lambda: self.run("scontrol", "ping").returncode == 0 and "UP" in self.run("scontrol", "ping").stdout,
            timeout,
            "slurmctld",
        )
        self._spawn([_sbin("slurmd"), "-D", "-N", "localhost", "-f", str(self.conf)], "slurmd")
        self._wait(lambda: self.run("sinfo", "-h", "-o", "%T").stdout.strip() == "idle", timeout, "an idle node")

    def _spawn(self, cmd: list[str], name: str) -> None:
        out = open(self.root / "log" / f"{name}.out", "w")
        self.procs.append(subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=self.env))

    def _wait(self, ready, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for proc in self.procs:
                if proc.poll() is not None:
                    raise RuntimeError(
                        f"{proc.args[0]} exited with {proc.returncode} waiting for {what}: {self.logs()}"
                    )
            if ready():
                return
            time.sleep(0.3)
        raise RuntimeError(f"no {what} within {timeout} s: {self.logs()}")

    def logs(self) -> str:
        return "\n".join(
            f"== {p.name}\n{p.read_text()[-1500:]}" for p in sorted((self.root / "log").glob("*")) if p.is_file()
        )

    def run(self, *cmd: str, timeout: float = 30) -> subprocess.CompletedProcess:
        return subprocess.run(list(cmd), capture_output=True, text=True, env=self.env, timeout=timeout)

    def jobs(self) -> dict[str, dict[str, str]]:
        """Every job slurmctld still knows (finished ones for MinJobAge): id -> scontrol's fields."""
        out = self.run("scontrol", "-o", "show", "job").stdout
        jobs = {}
        for line in out.splitlines():
            fields = dict(item.split("=", 1) for item in line.split() if "=" in item)
            if "JobId" in fields:
                jobs[fields["JobId"]] = fields
        return jobs

    def stop(self) -> None:
        """Cancel every job of this cluster, then end the daemons it started (newest first)."""
        if self.procs and self.procs[-1].poll() is None and any(p.args[0].endswith("slurmctld") for p in self.procs):
            try:
                self.run("scancel", "--full", "--user", "root")
                deadline = time.monotonic() + 40
                while time.monotonic() < deadline and any(
                    j.get("JobState") in ("RUNNING", "COMPLETING", "PENDING", "CONFIGURING")
                    for j in self.jobs().values()
                ):
                    time.sleep(0.5)
            except Exception:  # the daemons go down regardless
                pass
        for proc in reversed(self.procs):
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=10)
        self.procs.clear()
        if self.linked and SYSTEM_CONF.is_symlink() and SYSTEM_CONF.resolve() == self.conf.resolve():
            SYSTEM_CONF.unlink()
        self.linked = False
