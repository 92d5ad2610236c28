"""One shape for every bench record: machine, command, load, date, then the script's results.

    run = record.begin(args.quick)            # at the start: command, date, load, heavy processes
    run.write(run.path("name.json"), results)  # as often as wanted; adds the load at the end

A record is {"machine", "command", "load", "date", "quick", "results"}. `--quick` runs (a few
steps on tiny data, to check the script still works) write to $CIFARLAB_BENCH_QUICK_DIR (default:
a folder in the system temp dir), never to bench/results/.
"""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import sys
import tempfile
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

from cifarlab.atomic import write_json_atomic

RESULTS = Path(__file__).resolve().parent / "results"
QUICK_DIR_ENV = "CIFARLAB_BENCH_QUICK_DIR"
CPU_FLAGS = ("avx512f", "avx512_bf16", "amx_tile", "amx_bf16", "amx_int8")
HEAVY_CPU_PERCENT = 10.0   # a process using more of one core than this while the bench starts
HEAVY_RSS_MB = 1024.0      # or holding more memory than this is listed in the record
SAMPLE_SECONDS = 0.5


def add_quick_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--quick", action="store_true",
                        help=f"a few steps on tiny generated data, to check the script runs; the "
                             f"record goes to ${QUICK_DIR_ENV} (default: a temp folder), not "
                             f"bench/results/")


def results_dir(quick: bool) -> Path:
    if not quick:
        return RESULTS
    return Path(os.environ.get(QUICK_DIR_ENV) or Path(tempfile.gettempdir()) / "cifarlab-bench-quick")


def load_average() -> dict[str, float]:
    one, five, fifteen = os.getloadavg()
    return {"1min": round(one, 2), "5min": round(five, 2), "15min": round(fifteen, 2)}


def _read(path: str) -> str:
    try:
        return Path(path).read_text(errors="replace")
    except OSError:
        return ""


def _cpuinfo() -> tuple[str, set[str]]:
    model, flags = "", set()
    for line in _read("/proc/cpuinfo").splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "model name" and not model:
            model = value.strip()
        elif key.strip() == "flags" and not flags:
            flags = set(value.split())
    return model or platform.processor() or platform.machine(), flags


def _memory_gb() -> float | None:
    for line in _read("/proc/meminfo").splitlines():
        if line.startswith("MemTotal:"):
            return round(int(line.split()[1]) / 2**20, 1)
    return None


def _version(*distributions: str) -> str | None:
    for name in distributions:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return None


def machine() -> dict:
    cpu, flags = _cpuinfo()
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "cores_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "memory_gb": _memory_gb(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "numpy": _version("numpy"),
        "tensorflow": _version("tensorflow-cpu", "tensorflow"),
        "keras": _version("keras"),
        "opencv": _version("opencv-python", "opencv-python-headless"),
        "cpu_flags": {flag: flag in flags for flag in CPU_FLAGS},
    }


def _process_times() -> dict[int, tuple[int, int]]:
    """pid -> (user + system CPU ticks, resident pages) of every process /proc lets us read."""
    out = {}
    for entry in Path("/proc").glob("[0-9]*"):
        stat = _read(f"{entry}/stat")
        if ")" not in stat:
            continue
        fields = stat.rsplit(")", 1)[1].split()  # fields[0] is the state (field 3 of proc(5))
        out[int(entry.name)] = (int(fields[11]) + int(fields[12]), int(fields[21]))
    return out


def heavy_processes() -> list[dict]:
    """Other processes using a noticeable share of a core or much memory (Linux /proc; else [])."""
    if not Path("/proc/self/stat").exists():
        return []
    before = _process_times()
    time.sleep(SAMPLE_SECONDS)
    after = _process_times()
    ticks, page_mb = os.sysconf("SC_CLK_TCK"), os.sysconf("SC_PAGE_SIZE") / 2**20
    heavy = []
    for pid, (cpu, pages) in after.items():
        percent = 100 * (cpu - before.get(pid, (cpu, 0))[0]) / ticks / SAMPLE_SECONDS
        rss_mb = pages * page_mb
        if pid != os.getpid() and (percent >= HEAVY_CPU_PERCENT or rss_mb >= HEAVY_RSS_MB):
            command = _read(f"/proc/{pid}/cmdline").replace("\0", " ").strip()
            heavy.append({"pid": pid, "cpu_percent": round(percent, 1), "rss_mb": round(rss_mb),
                         "command": command[:160] or _read(f"/proc/{pid}/comm").strip()})
    return sorted(heavy, key=lambda p: -p["cpu_percent"])


@dataclass
class BenchRun:
    """What a record says about its run; `write` can be called after every partial result."""

    quick: bool
    command: str = field(default_factory=lambda: shlex.join(getattr(sys, "orig_argv", sys.argv)))
    date: str = field(default_factory=lambda: time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
    load_at_start: dict = field(default_factory=load_average)
    heavy_at_start: list = field(default_factory=heavy_processes)
    machine: dict = field(default_factory=machine)

    def path(self, name: str) -> Path:
        """Where the record `name` goes: bench/results/, or the quick folder with --quick."""
        return results_dir(self.quick) / name

    def fields(self) -> dict:
        """The common fields, with the load average now as the end load."""
        return {"machine": self.machine, "command": self.command,
                "load": {"start": self.load_at_start, "end": load_average(),
                         "heavy_processes_at_start": self.heavy_at_start},
                "date": self.date, "quick": self.quick}

    def write(self, path: str | Path, results: dict) -> Path:
        return write_json_atomic(path, {**self.fields(), "results": results})


def begin(quick: bool = False) -> BenchRun:
    return BenchRun(quick)


def results_of(record: dict) -> dict:
    """The script's own results of a record, also of one written before this module existed."""
    return record["results"] if "results" in record and "machine" in record else record
