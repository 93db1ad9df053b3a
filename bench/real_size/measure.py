"""Measuring a process tree from outside, on Linux, from /proc (no extra dependency).

A sampler thread reads, every `interval` seconds, the resident memory (VmRSS) of a process and
all its descendants, their CPU time, and the size of the folders given; it keeps the peaks and a
time series, so a caller can cut the run into steps (by the times the program printed its step
lines) and get each step's peak RSS, CPU time and peak disk. RSS is sampled, so a peak shorter
than the interval can be missed; GNU time's %M would catch it, but only for the whole run.
CPU time of exited children is counted once their parent reaps them (cutime/cstime).
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

PAGE = os.sysconf("SC_PAGE_SIZE")
TICK = os.sysconf("SC_CLK_TCK")


def _children_map() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as handle:
                stat = handle.read()
        except OSError:
            continue
        fields = stat[stat.rfind(b")") + 2:].split()
        children.setdefault(int(fields[1]), []).append(int(entry))
    return children


def tree_pids(root: int) -> list[int]:
    children = _children_map()
    pids, stack = [], [root]
    while stack:
        pid = stack.pop()
        pids.append(pid)
        stack.extend(children.get(pid, []))
    return pids


def _stat(pid: int) -> tuple[int, float] | None:
    """(RSS bytes, CPU seconds incl. reaped children) of one process."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            stat = handle.read()
    except OSError:
        return None
    fields = stat[stat.rfind(b")") + 2:].split()
    # after the command: state(0) ppid(1) ... utime(11) stime(12) cutime(13) cstime(14) ... rss(21)
    cpu = sum(int(fields[i]) for i in (11, 12, 13, 14)) / TICK
    return int(fields[21]) * PAGE, cpu


def tree_rss_cpu(root: int) -> tuple[int, float]:
    rss, cpu = 0, 0.0
    for pid in tree_pids(root):
        got = _stat(pid)
        if got:
            rss += got[0]
            cpu += got[1]
    return rss, cpu


def rss_bytes(pid: int) -> int:
    """VmRSS of one process."""
    got = _stat(pid)
    return got[0] if got else 0


def folder_bytes(paths: Sequence[Path]) -> int:
    total = 0
    for root in paths:
        for dirpath, _, files in os.walk(root):
            for name in files:
                try:
                    total += os.lstat(os.path.join(dirpath, name)).st_blocks * 512
                except OSError:
                    pass
    return total


@dataclass
class Sample:
    t: float  # seconds since the sampler started
    rss: int
    cpu: float
    disk: int


@dataclass
class TreeSampler:
    root: int
    folders: Sequence[Path] = ()
    interval: float = 0.25
    samples: list[Sample] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _cpu_floor: float = 0.0  # the highest CPU total seen: a reaped child's time must not vanish

    def __enter__(self) -> "TreeSampler":
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join()

    def sample(self) -> Sample:
        rss, cpu = tree_rss_cpu(self.root)
        self._cpu_floor = max(self._cpu_floor, cpu)
        got = Sample(time.monotonic() - self.started, rss, self._cpu_floor, folder_bytes(self.folders))
        self.samples.append(got)
        return got

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.interval)

    def window(self, begin: float, end: float) -> dict[str, float]:
        """Peaks and CPU time between two times (seconds since start)."""
        inside = [s for s in self.samples if begin <= s.t <= end] or [
            min(self.samples, key=lambda s: abs(s.t - end))] if self.samples else []
        if not inside:
            return {}
        before = [s for s in self.samples if s.t <= begin]
        cpu0 = before[-1].cpu if before else 0.0
        return {"peak_rss_mib": round(max(s.rss for s in inside) / 2**20, 1),
                "cpu_s": round(max(s.cpu for s in inside) - cpu0, 2),
                "peak_disk_bytes": max(s.disk for s in inside)}

    @property
    def peak_rss(self) -> int:
        return max((s.rss for s in self.samples), default=0)

    @property
    def peak_disk(self) -> int:
        return max((s.disk for s in self.samples), default=0)


def rss_parts_mib(pid: int | str = "self") -> dict[str, float]:
    """VmRSS split as the kernel keeps it: RssAnon (memory the process allocated: KV cache, compute
    and repacked weight buffers) and RssFile (pages of mapped files: the GGUF's weights under mmap,
    which the kernel can drop and read again). llama.cpp's CPU repack copies K-quant weights into
    an allocated buffer after reading them through the mapping, so both can hold the same weights."""
    parts = {"VmRSS": 0.0, "RssAnon": 0.0, "RssFile": 0.0}
    with open(f"/proc/{pid}/status") as handle:
        for line in handle:
            key = line.split(":", 1)[0]
            if key in parts:
                parts[key] = int(line.split()[1]) / 1024
    return {"rss_mib": round(parts["VmRSS"], 1), "anon_mib": round(parts["RssAnon"], 1),
            "file_mib": round(parts["RssFile"], 1)}
