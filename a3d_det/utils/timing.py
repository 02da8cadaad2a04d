"""Timing for ``tools/analysis/benchmark.py``: interleaved rounds, medians,
ratios, CUDA synchronisation, CPU time and peak memory, in one place.

Cases are timed in rounds, one call of every case per round with the order
rotated each round, so that load from other processes on a shared machine
hits all cases alike; a ratio is the median over rounds of the ratio of two
cases timed in the same round (slow drifts of the machine's load cancel).
Each call is timed by the wall clock and by the CPU time of this process
(all threads: the work done, less sensitive to other processes). On CUDA the
device is synchronised before and after each call, so the clocks include the
kernels the call launched.
"""
from __future__ import annotations

import os
import resource
import statistics
import time
from dataclasses import dataclass, field
from typing import TypeVar
from collections.abc import Callable, Hashable, Mapping, Sequence

import torch

from a3d_det.utils.errors import UserInputError

__all__ = ['CLOCKS', 'Timings', 'current_rss_mib', 'device_description', 'median_ratio',
           'parse_device', 'peak_memory_mib', 'reset_peak_memory', 'rotated',
           'synchronize', 'time_interleaved']

K = TypeVar('K', bound=Hashable)
T = TypeVar('T')

#: The two clocks every call is timed with.
CLOCKS = ('wall', 'cpu')


@dataclass
class Timings:
    """Seconds of each timed call of one case, per clock, in round order."""
    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)

    def seconds(self, clock: str = 'wall') -> list[float]:
        """The calls' seconds by ``clock`` (``'wall'`` or ``'cpu'``)."""
        if clock not in CLOCKS:
            raise ValueError(f'clock must be one of {CLOCKS}, got {clock!r}')
        return self.wall if clock == 'wall' else self.cpu

    def median(self, clock: str = 'wall') -> float:
        """Median seconds per call by ``clock``."""
        return statistics.median(self.seconds(clock))


def synchronize(device: torch.device | str | None) -> None:
    """Wait for the kernels queued on a CUDA ``device``; nothing elsewhere."""
    if device is not None and torch.device(device).type == 'cuda':
        torch.cuda.synchronize(device)


def rotated(items: Sequence[T], shift: int) -> list[T]:
    """``items`` started at position ``shift`` (modulo their number)."""
    shift %= max(len(items), 1)
    return list(items[shift:]) + list(items[:shift])


def time_interleaved(cases: Mapping[K, Callable[[], object]], rounds: int, warmup: int = 1,
                     device: torch.device | str | None = None) -> dict[K, Timings]:
    """Time every case ``rounds`` times, one call of each per round.

    Args:
        cases: name -> a call to time (its result is ignored).
        rounds: timed rounds; round ``r`` starts with case ``r`` (rotated).
        warmup: untimed rounds first, the cases in the given order.
        device: synchronised around each call when it is a CUDA device.

    Returns:
        name -> :class:`Timings` with ``rounds`` calls per clock.
    """
    names = list(cases)
    for _ in range(warmup):
        for name in names:
            cases[name]()
    timings = {name: Timings() for name in names}
    for r in range(rounds):
        for name in rotated(names, r):
            synchronize(device)
            wall, cpu = time.perf_counter(), time.process_time()
            cases[name]()
            synchronize(device)
            timings[name].wall.append(time.perf_counter() - wall)
            timings[name].cpu.append(time.process_time() - cpu)
    return timings


def median_ratio(seconds: Sequence[float], base: Sequence[float]) -> float:
    """Median over rounds of ``seconds[r] / base[r]`` (both timed in round ``r``)."""
    if len(seconds) != len(base) or not seconds:
        raise ValueError('need the same positive number of rounds for both cases')
    return statistics.median(a / b for a, b in zip(seconds, base))


def parse_device(name: str) -> torch.device:
    """``torch.device(name)`` after checking it can hold a tensor.

    Raises:
        UserInputError: an unknown device, or CUDA where there is none.
    """
    try:
        device = torch.device(name)
        torch.empty(1, device=device)
    except (RuntimeError, AssertionError) as err:
        msg = str(err).strip().strip('\'"').splitlines() or [type(err).__name__]
        raise UserInputError(f'device {name!r} unusable: {msg[0]}') from None
    return device


def device_description(device: torch.device) -> str:
    """The GPU's name, or ``CPU, N threads``."""
    if device.type == 'cuda':
        return torch.cuda.get_device_name(device)
    return f'CPU, {torch.get_num_threads()} threads'


def reset_peak_memory(device: torch.device) -> None:
    """Start a new CUDA peak (CPU: the process's peak cannot be reset)."""
    if device.type == 'cuda':
        torch.cuda.reset_peak_memory_stats(device)


def peak_memory_mib(device: torch.device) -> float:
    """CUDA: ``max_memory_allocated`` since the last reset. CPU: the
    process's peak resident set size (``getrusage`` max RSS)."""
    if device.type == 'cuda':
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def current_rss_mib() -> float:
    """The process's resident set size now (Linux ``/proc/self/statm``)."""
    with open('/proc/self/statm') as f:
        pages = int(f.read().split()[1])
    return pages * os.sysconf('SC_PAGE_SIZE') / 2**20
