"""LesionVisualizationHook: re-reads the key slice and writes overlays."""
import cv2
import numpy as np
import torch
from mmengine.structures import InstanceData

from a3d_det.registry import HOOKS
from a3d_det.structures.lesion_data_sample import LesionDataSample
from a3d_det.visualization import COLORS


def _sample(img_path, file_name):
    s = LesionDataSample(metainfo=dict(
        img_path=img_path, file_name=file_name, ori_shape=(64, 80),
        ori_gt_bboxes=np.array([[5, 40, 20, 60]], np.float32)))
    pred = InstanceData()
    pred.bboxes = torch.tensor([[10., 10., 30., 30.], [50., 5., 70., 25.]])
    pred.scores = torch.tensor([0.9, 0.1])  # the second is below score_thr
    pred.labels = torch.zeros(2, dtype=torch.long)
    pred.masks = torch.zeros(2, 64, 80, dtype=torch.bool)
    s.pred_instances = pred
    return s


def test_hook_writes_one_overlay_per_key_slice(tmp_path):
    hu = np.full((64, 80), 40, np.float32)
    png = tmp_path / '000001_01_01' / '010.png'
    png.parent.mkdir()
    cv2.imwrite(str(png), (hu + 32768).astype(np.uint16))
    hook = HOOKS.build(dict(type='LesionVisualizationHook',
                            show_dir=str(tmp_path / 'show'), score_thr=0.5))
    hook.before_test(None)
    hook.after_test_iter(None, 0, None, [_sample(str(png), '000001_01_01/010.png')])
    out = cv2.imread(str(tmp_path / 'show' / '000001_01_01_010.png'))
    assert out is not None
    k = 4  # 80 px enlarged to >= 256
    assert out.shape == (64 * k, 80 * k, 3)
    assert tuple(out[30 * k, 20 * k]) == COLORS['false positive']
    assert tuple(out[60 * k, 12 * k]) == COLORS['ground truth']
    # the low-scoring box at x 50..70 is not drawn
    assert not (out[25 * k, 55 * k:65 * k] == COLORS['false positive']).all(axis=-1).any()


def test_hook_skips_samples_without_a_readable_slice(tmp_path):
    hook = HOOKS.build(dict(type='LesionVisualizationHook', show_dir=str(tmp_path / 's')))
    assert hook.draw_sample(_sample(str(tmp_path / 'missing.png'), 'a/b.png')) is None


def test_hook_in_the_test_loop(tmp_path):
    """``tools/test.py --show-dir``: the hook in mmengine's test loop on
    synthetic DeepLesion data, one overlay per test key slice."""
    import os
    import os.path as osp

    from mmengine.config import Config
    from mmengine.runner import Runner

    from a3d_det.datasets import make_synthetic_deeplesion
    from a3d_det.utils.runner_config import add_visualization_hook
    from tests.helpers import tiny_detector

    cfg_path, ckpt, _ = tiny_detector.write_tiny_detector(str(tmp_path))
    data = str(tmp_path / 'data')
    summary = make_synthetic_deeplesion(data, num_series=6, size=64, seed=1)
    cfg = Config.fromfile(cfg_path)
    cfg.work_dir = str(tmp_path / 'work')
    cfg.load_from = ckpt
    cfg.test_dataloader.dataset.data_root = data
    cfg.test_dataloader.dataset.split = None  # every key slice of the 6 series
    cfg.test_dataloader.num_workers = 0
    cfg.test_dataloader.persistent_workers = False
    cfg.test_cfg = dict(type='TestLoop')
    cfg.visualizer = None
    for key in ('train_dataloader', 'val_dataloader', 'val_evaluator', 'optim_wrapper',
                'param_scheduler', 'train_cfg', 'val_cfg'):
        cfg.pop(key, None)
    show = str(tmp_path / 'show')
    add_visualization_hook(cfg, show)
    runner = Runner.from_cfg(cfg)
    runner.test()
    written = sorted(os.listdir(show))
    dataset = runner.test_loop.dataloader.dataset
    assert 0 < len(written) == len(dataset) <= summary['num_images']
    assert written[0] == dataset.get_data_info(0)['file_name'].replace('/', '_')
    assert all(n.endswith('.png') and '_' in n for n in written)
    img = cv2.imread(osp.join(show, written[0]))
    assert img is not None and img.shape[2] == 3
