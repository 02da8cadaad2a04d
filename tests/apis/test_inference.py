"""init_detector / inference_detector on a tiny randomly initialised detector."""

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope

from a3d_det.apis import build_test_pipeline, inference_detector, init_detector
from a3d_det.registry import DATASETS
from a3d_det.datasets.deeplesion import write_png_hu
from tests.helpers import tiny_detector


@pytest.fixture(scope='module')
def tiny(tmp_path_factory):
    return tiny_detector.write_tiny_detector(str(tmp_path_factory.mktemp('tiny')))


@pytest.fixture(scope='module')
def model(tiny):
    cfg_path, ckpt_path, _ = tiny
    return init_detector(cfg_path, ckpt_path, device='cpu')


def _volume(n=7, h=40, w=48, seed=0):
    return np.random.default_rng(seed).integers(-1000, 1500, (n, h, w)).astype(np.float32)


def _capture(model, monkeypatch):
    seen = []
    original = model.test_step

    def spy(data):
        seen.append(data)
        return original(data)
    monkeypatch.setattr(model, 'test_step', spy)
    return seen


def test_input_is_built_exactly_as_in_training(model, tiny, tmp_path, monkeypatch):
    """Key slice input from memory == the config's full test pipeline on the
    same volume written as DeepLesion PNGs (neighbours, windowing, resize, pad)."""
    _, _, cfg = tiny
    vol = _volume()
    for j, hu in enumerate(vol):  # DeepLesion numbers slices from 001
        write_png_hu(str(tmp_path / '000001_01_01' / f'{j + 1:03d}.png'), hu)
    key, interval = 3, 1.25  # 2 mm neighbours fall between native slices
    # the reference: the config's test dataset (it fills num_slices, the
    # 2 mm target interval and the HU window into its pipeline)
    init_default_scope('a3d_det')
    dataset = DATASETS.build(dict(cfg.test_dataloader.dataset, data_root=str(tmp_path),
                                  image_dir='', lazy_init=True))
    reference = dataset.pipeline(dict(
        image_dir=str(tmp_path), file_name=f'000001_01_01/{key + 1:03d}.png',
        img_path=str(tmp_path / '000001_01_01' / f'{key + 1:03d}.png'),
        slice_interval=interval, spacing=0.7, gt_bboxes=np.zeros((0, 4), np.float32)))

    seen = _capture(model, monkeypatch)
    inference_detector(model, vol, 0.7, interval, [key])
    got = seen[0]['inputs'][0]
    assert got.shape == reference['inputs'].shape == (1, 3, 64, 64)
    torch.testing.assert_close(got, reference['inputs'])
    meta, ref_meta = seen[0]['data_samples'][0].metainfo, reference['data_samples'].metainfo
    for k in ('ori_shape', 'img_shape', 'pad_shape', 'scale_factor', 'slice_interval',
              'thickness', 'spacing'):
        assert meta[k] == ref_meta[k], k


def _loader_and_window(cfg):
    pipeline = build_test_pipeline(cfg)
    load = pipeline.transforms[0]
    window = next(t for t in pipeline.transforms if type(t).__name__ == 'WindowCT')
    return (type(load).__name__, load.num_slices, load.slice_interval, load.interpolation,
            load.native_if_thicker, window.window)


def test_slice_count_and_interval_follow_the_test_dataset(tiny):
    cfg = Config.fromfile(tiny[0])
    # The dataset class's defaults (the config sets num_slices only).
    assert _loader_and_window(cfg) == ('LoadMultiSliceFromArray', 3, 2.0, 'linear', False,
                                       (-1024.0, 2050.0))
    cfg.test_dataloader.dataset.num_slices = 7
    cfg.test_dataloader.dataset.slice_interval = None  # AlignShift: native neighbours
    cfg.test_dataloader.dataset.window = (-175, 275)
    cfg.test_dataloader.dataset.interpolation = 'published'
    cfg.test_dataloader.dataset.native_if_thicker = True
    assert _loader_and_window(cfg) == ('LoadMultiSliceFromArray', 7, None, 'published', True,
                                       (-175.0, 275.0))
    # The rest of the test pipeline is the config's, in its order.
    names = [type(t).__name__ for t in build_test_pipeline(cfg).transforms]
    assert names == ['LoadMultiSliceFromArray'] + [
        t['type'] for t in cfg.test_dataloader.dataset.pipeline[1:]]
    cfg.test_dataloader.dataset.pipeline[0] = dict(type='WindowCT')
    with pytest.raises(ValueError, match='must start with a multi-slice loader'):
        build_test_pipeline(cfg)


def test_detections_are_in_original_pixels(model):
    vol = _volume(n=3, h=40, w=48)
    out = inference_detector(model, vol, 0.7, 2.0, [1])
    assert len(out) == 1 and out[0]['index'] == 1
    boxes, scores, masks = out[0]['boxes'], out[0]['scores'], out[0]['masks']
    assert boxes.shape[1] == 4 and len(boxes) == len(scores) == len(masks) > 0
    assert masks.shape[1:] == (40, 48) and masks.dtype == bool
    assert (boxes[:, [0, 2]] >= 0).all() and (boxes[:, [0, 2]] <= 48 + 1e-3).all()
    assert (boxes[:, [1, 3]] >= 0).all() and (boxes[:, [1, 3]] <= 40 + 1e-3).all()
    assert (boxes[:, 2] > boxes[:, 0]).all()


@pytest.mark.parametrize('shape', [(16, 16), (1024, 1024)])
def test_any_in_plane_size(tiny, shape):
    # at most 5 detections: pasting 50 masks at 1024^2 takes seconds on CPU
    small = init_detector(tiny[0], tiny[1], cfg_options={'model.roi_head.max_per_img': 5})
    out = inference_detector(small, _volume(n=2, h=shape[0], w=shape[1]), 0.5, 5.0)
    assert [o['index'] for o in out] == [0, 1]
    assert out[0]['masks'].shape[1:] == shape
    assert len(out[0]['boxes']) <= 5


def test_batching_does_not_change_results(model):
    vol = _volume(n=4)
    one = inference_detector(model, vol, 0.7, 2.0, [0, 2, 3], batch_size=1)
    three = inference_detector(model, vol, 0.7, 2.0, [0, 2, 3], batch_size=3)
    for a, b in zip(one, three):
        assert a['index'] == b['index']
        np.testing.assert_allclose(a['scores'], b['scores'], atol=1e-4)
        np.testing.assert_allclose(a['boxes'], b['boxes'], atol=1e-2)


def test_bad_arguments(model):
    with pytest.raises(ValueError, match='outside the volume'):
        inference_detector(model, _volume(n=3), 0.7, 2.0, [3])
    with pytest.raises(ValueError, match=r'\(N, H, W\)'):
        inference_detector(model, np.zeros((8, 8)), 0.7, 2.0)
    with pytest.raises(ValueError, match='slice_interval'):
        inference_detector(model, _volume(n=3), 0.7, 0.0)


def test_checkpoint_loading(tiny, tmp_path):
    cfg_path, ckpt_path, cfg = tiny
    a = init_detector(cfg, ckpt_path)  # Config object, mmengine-style checkpoint
    # DDP-wrapped names and a bare state dict load as well
    torch.save({'module.' + k: v for k, v in a.state_dict().items()}, tmp_path / 'ddp.pth')
    b = init_detector(cfg_path, str(tmp_path / 'ddp.pth'))
    for (k, va), vb in zip(a.state_dict().items(), b.state_dict().values()):
        torch.testing.assert_close(va, vb, msg=k)
    assert not a.training and a.cfg.model.type == 'LesionMaskRCNN'

    with pytest.raises(FileNotFoundError, match='checkpoint not found'):
        init_detector(cfg_path, str(tmp_path / 'nope.pth'))
    torch.save(dict(state_dict={'backbone.other.weight': torch.zeros(1)}), tmp_path / 'bad.pth')
    with pytest.raises(ValueError, match='does not match'):
        init_detector(cfg_path, str(tmp_path / 'bad.pth'))
    (tmp_path / 'junk.pth').write_bytes(b'not a checkpoint')
    with pytest.raises(ValueError, match='weights_only'):
        init_detector(cfg_path, str(tmp_path / 'junk.pth'))


@pytest.mark.skipif(torch.cuda.is_available(), reason='checks the CPU-only message')
def test_cuda_requested_without_cuda(tiny):
    with pytest.raises(ValueError, match='CUDA is not available'):
        init_detector(tiny[0], device='cuda')


def test_paper_config_needs_no_imagenet_file(tiny, tmp_path):
    """The leaf configs name checkpoints/densenet121.pth for training; inference
    builds the model without it (the file is read only by ``init_weights``)."""
    cfg = Config.fromfile(tiny[0])
    absent = str(tmp_path / 'absent_densenet121.pth')
    cfg.model.backbone.pretrained = absent
    model = init_detector(cfg, tiny[1])
    assert model.backbone.pretrained == absent      # the config is not rewritten
    init_detector(cfg)                               # nor needed without a checkpoint
    with pytest.raises(FileNotFoundError, match='absent_densenet121'):
        model.backbone.init_weights()
