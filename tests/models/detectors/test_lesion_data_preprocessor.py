import pytest
import torch

from a3d_det.registry import MODELS
from a3d_det.structures.lesion_data_sample import LesionDataSample


def test_pads_height_and_width_never_depth():
    pre = MODELS.build(dict(type='LesionDataPreprocessor', pad_size_divisor=32))
    a, b = torch.ones(1, 7, 40, 70), torch.full((1, 7, 64, 30), 2.0)
    samples = [LesionDataSample(), LesionDataSample()]
    out = pre(dict(inputs=[a, b], data_samples=samples))
    assert out['inputs'].shape == (2, 1, 7, 64, 96)  # D stays 7
    assert out['inputs'].dtype == torch.float32
    assert torch.equal(out['inputs'][0, :, :, :40, :70], a)
    assert (out['inputs'][0, :, :, 40:] == 0).all() and (out['inputs'][0, :, :, :, 70:] == 0).all()
    assert torch.equal(out['inputs'][1, :, :, :, :30], b)
    assert all(s.batch_input_shape == (64, 96) for s in out['data_samples'])


def test_accepts_a_stacked_batch_and_pad_value():
    pre = MODELS.build(dict(type='LesionDataPreprocessor', pad_size_divisor=16, pad_value=-50))
    out = pre(dict(inputs=torch.zeros(2, 1, 3, 20, 20)))
    assert out['inputs'].shape == (2, 1, 3, 32, 32)
    assert out['inputs'][0, 0, 0, 31, 31] == -50


def test_rejects_mixed_slice_counts_and_bad_shapes():
    pre = MODELS.build(dict(type='LesionDataPreprocessor'))
    with pytest.raises(ValueError, match='same'):
        pre(dict(inputs=[torch.zeros(1, 3, 32, 32), torch.zeros(1, 7, 32, 32)]))
    with pytest.raises(ValueError, match=r'\(1, D, H, W\)'):
        pre(dict(inputs=[torch.zeros(3, 32, 32)]))


def test_copies_to_the_device_without_blocking(monkeypatch):
    """Every host-to-device copy (inputs and data samples) is non-blocking by
    default; ``non_blocking=False`` restores blocking copies."""
    calls = []
    original = torch.Tensor.to

    def recording_to(self, *args, **kwargs):
        calls.append(kwargs.get('non_blocking'))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(torch.Tensor, 'to', recording_to)
    for config, expected in ((dict(), True), (dict(non_blocking=False), False)):
        calls.clear()
        pre = MODELS.build(dict(type='LesionDataPreprocessor', **config))
        sample = LesionDataSample()
        sample.set_field(torch.ones(2), 'weights')
        out = pre(dict(inputs=[torch.ones(1, 3, 32, 32), torch.ones(1, 3, 32, 32)],
                       data_samples=[sample]))
        assert out['inputs'].shape == (2, 1, 3, 32, 32)
        assert len(calls) == 3 and set(calls) == {expected}, calls
