import torch

from a3d_det.models.scratch import release, scratch


def test_a_slot_is_the_same_memory_until_it_must_grow():
    release()
    like = torch.empty(0)
    a = scratch('a', 1000, like)
    b = scratch('a', 10, like)
    assert a.data_ptr() == b.data_ptr() and b.numel() == 10 and b.dtype == torch.float32
    c = scratch('a', 10 ** 5, like)                  # grown
    assert c.numel() == 10 ** 5 and scratch('a', 5, like).data_ptr() == c.data_ptr()


def test_slots_and_dtypes_never_overlap():
    release()
    a = scratch('a', 100, torch.empty(0))
    b = scratch('b', 100, torch.empty(0))
    d = scratch('a', 100, torch.empty(0, dtype=torch.float64))
    ends = sorted((t.data_ptr(), t.data_ptr() + t.numel() * t.element_size()) for t in (a, b, d))
    assert all(end <= start for (_, end), (start, _) in zip(ends, ends[1:]))
    assert d.dtype == torch.float64
    release()
    assert scratch('a', 100, torch.empty(0)).numel() == 100
