"""Where, when and from what code a row ran: recorded with each run in the results index, so a number in the results
documents says which machine and commit produced it."""
from __future__ import annotations

import datetime
import os
import platform
import shlex
import subprocess
import sys
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[2]


def hardware() -> str:
    """The GPUs' count and name when CUDA is available (rows then train there), the CPU model and cores otherwise."""
    import torch  # imported here: reading or rendering the index needs no torch

    if torch.cuda.is_available():
        return f"{torch.cuda.device_count()}× {torch.cuda.get_device_name(0)}"
    return f"{cpu_model()}, {os.cpu_count()} cores"


def cpu_model() -> str:
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    return platform.processor() or platform.machine() or "unknown CPU"


def git_commit() -> str | None:
    """The repository's commit, with `+changes` when its tracked files differ from it; None outside a git checkout."""
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPOSITORY, capture_output=True, text=True,
                                check=True).stdout.strip()
        changed = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPOSITORY,
                                 capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    return f"{commit}+changes" if changed else commit


def utc_now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def command_line(argv: list[str] | None = None) -> str:
    """The command being run (a script's path as Python saw it), when its caller did not say."""
    return shlex.join(["python", *(sys.argv if argv is None else argv)])


def tables_command(name: str, argv: list[str] | None) -> str:
    """`python -m experiments.tables NAME ...` with the arguments given (`argv`, or the command line's)."""
    return command_line(["-m", "experiments.tables", name, *(sys.argv[1:] if argv is None else argv)])
