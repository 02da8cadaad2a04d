"""a3d_det.utils.timing: interleaved rounds, medians, ratios, devices, memory."""
import statistics

import pytest
import torch

from a3d_det.utils.errors import UserInputError
from a3d_det.utils.timing import (Timings, current_rss_mib, median_ratio, parse_device,
                                  peak_memory_mib, rotated, time_interleaved)


def test_rotated():
    assert rotated(['a', 'b', 'c'], 0) == ['a', 'b', 'c']
    assert rotated(['a', 'b', 'c'], 4) == ['b', 'c', 'a']
    assert rotated([], 3) == []


def test_time_interleaved_rotates_each_round_after_warmup():
    calls = []
    cases = {name: (lambda n=name: calls.append(n)) for name in 'abc'}
    timings = time_interleaved(cases, rounds=3, warmup=2)
    assert calls == list('abc' * 2) + list('abc') + list('bca') + list('cab')
    assert all(len(t.wall) == len(t.cpu) == 3 for t in timings.values())
    assert all(s >= 0 for t in timings.values() for s in t.wall + t.cpu)


def test_time_interleaved_measures_cpu_work():
    def busy():
        x = 0
        for i in range(200_000):
            x += i
    timings = time_interleaved({'idle': lambda: None, 'busy': busy}, rounds=3, warmup=0)
    assert timings['busy'].median('cpu') > timings['idle'].median('cpu')
    assert timings['busy'].median() > timings['idle'].median()


def test_median_ratio_pairs_rounds():
    a, b = [2.0, 9.0, 4.0], [1.0, 3.0, 4.0]
    assert median_ratio(a, b) == statistics.median([2.0, 3.0, 1.0]) == 2.0
    # not the ratio of the medians (4 / 3)
    assert median_ratio(a, b) != statistics.median(a) / statistics.median(b)
    with pytest.raises(ValueError):
        median_ratio([1.0], [1.0, 2.0])


def test_timings_clock_names():
    t = Timings(wall=[3.0, 1.0, 2.0], cpu=[0.5, 0.5, 0.1])
    assert t.median() == 2.0 and t.median('cpu') == 0.5
    with pytest.raises(ValueError, match='clock'):
        t.seconds('gpu')


def test_parse_device():
    assert parse_device('cpu') == torch.device('cpu')
    with pytest.raises(UserInputError, match="device 'nonsense' unusable"):
        parse_device('nonsense')
    if not torch.cuda.is_available():
        with pytest.raises(UserInputError, match="device 'cuda' unusable"):
            parse_device('cuda')


def test_cpu_memory_figures_hold_a_touched_allocation():
    """Not a growth test: in a long session freed memory may still be resident."""
    block = torch.ones(64 * 2**20 // 4)  # 64 MiB, touched
    now = current_rss_mib()
    assert now > 64
    assert peak_memory_mib(torch.device('cpu')) >= now - 1
    del block
