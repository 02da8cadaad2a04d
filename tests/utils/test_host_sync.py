"""HostSyncCounter counts the operations that synchronise on CUDA."""
import torch

from a3d_det.utils.host_sync import HostSyncCounter


def test_counts_synchronising_operations_only():
    x = torch.randn(10)
    with HostSyncCounter(sources=('test_host_sync',)) as counter:
        bool(x.sum() > 0)                  # _local_scalar_dense
        x.max().item()                     # _local_scalar_dense
        torch.where(x > 0)                 # nonzero
        x[x > 0] = 1.0                     # index_put_ with a boolean mask
        _ = x[x < 0]                       # index with a boolean mask
        # none of these wait for the device:
        x.masked_fill_(x > 0.5, 2.0)
        torch.where(x > 0, x, -x)
        _ = x[torch.tensor([1, 2])]
        x.topk(3)
    ops = counter.by_operator()
    assert ops == {'aten::_local_scalar_dense': 2, 'aten::nonzero': 1,
                   'aten::index_put_[bool]': 1, 'aten::index[bool]': 1}
    assert counter.total == 5
    assert all(site.startswith('test_host_sync.py:') for _, site in counter.counts)
