"""DeepLesionFROCMetric: a tiny fake batch, the dump, and a 2-process run."""
import json
import socket

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp
from mmengine.evaluator import Evaluator
from mmengine.registry import init_default_scope
from mmengine.structures import InstanceData

from a3d_det.evaluation import (DeepLesionFROCMetric, evaluate_froc,
                                load_froc_dump, sens_at_fp)
from a3d_det.registry import METRICS
from a3d_det.structures.lesion_data_sample import LesionDataSample
from tests.helpers import dist_froc_worker


@pytest.fixture
def worker():
    """tests/helpers/dist_froc_worker.py (the spawned ranks import it by the
    same name: they inherit sys.path)."""
    return dist_froc_worker


def _sample(gt, pred, scores, **meta):
    ds = LesionDataSample(metainfo=dict(
        ori_gt_bboxes=np.array(gt, np.float32).reshape(-1, 4), **meta))
    ds.pred_instances = InstanceData(
        bboxes=torch.tensor(pred, dtype=torch.float32).reshape(-1, 4),
        scores=torch.tensor(scores, dtype=torch.float32))
    return ds


def _batch():
    # image 0: lesion found at .9, FP at .8; image 1: FP at .6, lesion at .3;
    # image 2: no lesion, no prediction
    return [
        _sample([[0, 0, 9, 9]], [[0, 0, 9, 9], [100, 100, 109, 109]], [.9, .8],
                file_name='a.png', slice_interval=1.25,
                gt_diameters_mm=np.array([8.], np.float32),
                gt_lesion_types=np.array([5])),
        _sample([[20, 20, 29, 29]], [[200, 200, 209, 209], [20, 20, 29, 29]],
                [.6, .3], file_name='b.png', slice_interval=5.0,
                gt_diameters_mm=np.array([35.], np.float32),
                gt_lesion_types=np.array([4])),
        _sample([], [], [], file_name='c.png', slice_interval=5.0,
                gt_diameters_mm=np.zeros(0, np.float32),
                gt_lesion_types=np.zeros(0, np.int64))]


def test_built_by_name_from_the_registry():
    init_default_scope('a3d_det')
    metric = METRICS.build(dict(type='DeepLesionFROCMetric', criterion='iobb'))
    assert isinstance(metric, DeepLesionFROCMetric)
    assert metric.iou_thr == 0.3


def test_tiny_batch_objects_and_dicts_give_known_values(tmp_path):
    samples = _batch()
    metric = DeepLesionFROCMetric(breakdowns=('size',),
                                  dump_file=str(tmp_path / 'd.json'))
    # a LesionDataSample and the dicts mmengine's Evaluator passes
    metric.process({}, [samples[0]])
    metric.process({}, [s.to_dict() for s in samples[1:]])
    m = metric.evaluate(3)
    # 3 images: curve (0, .5) (1/3, .5) (2/3, .5) (2/3, 1); 0.5 FPs lies
    # between the 2nd and 3rd points, 1 FP beyond the end
    assert m['sens@0.5'] == 0.5 and m['sens@1'] == 1.0
    assert m['avg[0.5-4]'] == 0.875
    assert m['sens@0.5/size<10mm'] == 1.0
    assert m['sens@0.5/size>=30mm'] == 0.0
    assert m['sens@1/size>=30mm'] == 1.0
    assert 'sens@0.5/size10-30mm' not in m  # no lesion of that size
    assert metric.results == []  # reset for the next evaluation
    # the dump re-evaluates to the same numbers
    images = load_froc_dump(str(tmp_path / 'd.json'))
    assert [im['file_name'] for im in images] == ['a.png', 'b.png', 'c.png']
    assert evaluate_froc(images, breakdowns=('size',)).metrics() == m


def test_matches_core_on_random_samples(worker):
    samples = worker.make_samples(num=12, seed=3)
    evaluator = Evaluator(DeepLesionFROCMetric())
    evaluator.process(samples)
    m = evaluator.evaluate(len(samples))
    preds = [np.hstack([s.pred_instances.bboxes.numpy(),
                        s.pred_instances.scores.numpy()[:, None]])
             for s in samples]
    gts = [s.ori_gt_bboxes for s in samples]
    expected = sens_at_fp(preds, gts)
    np.testing.assert_array_equal(
        [m[k] for k in ('sens@0.5', 'sens@1', 'sens@2', 'sens@4', 'sens@8',
                        'sens@16')], expected)
    assert m['avg[0.5-4]'] == pytest.approx(expected[:4].mean())


def test_bad_samples_and_arguments_raise_clearly():
    metric = DeepLesionFROCMetric()
    ds = LesionDataSample(metainfo=dict(file_name='x.png'))
    ds.pred_instances = InstanceData(bboxes=torch.zeros(0, 4),
                                     scores=torch.zeros(0))
    with pytest.raises(KeyError, match='x.png.*ori_gt_bboxes'):
        metric.process({}, [ds])
    with pytest.raises(KeyError, match='pred_instances'):
        metric.process({}, [LesionDataSample(
            metainfo=dict(ori_gt_bboxes=np.zeros((0, 4))))])
    with pytest.raises(ValueError, match='unknown breakdowns'):
        DeepLesionFROCMetric(breakdowns=('organ',))
    with pytest.raises(ValueError, match='criterion'):
        DeepLesionFROCMetric(criterion='giou')
    with pytest.raises(ValueError, match='FP levels must be positive'):
        DeepLesionFROCMetric(fp_levels=(0, 1))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_two_process_gloo_equals_one_process(worker, tmp_path):
    single = worker.evaluate(worker.make_samples(), list(range(9)), 9,
                             str(tmp_path / 'single.json'))
    mp.spawn(worker.run_rank, args=(2, _free_port(), str(tmp_path)), nprocs=2,
             join=True)
    for rank in (0, 1):  # every rank receives rank 0's metrics
        with open(tmp_path / f'metrics_rank{rank}.json') as f:
            assert json.load(f) == single
    assert any(k.startswith('sens@4/type=') for k in single)
    names = [[im['file_name'] for im in load_froc_dump(str(tmp_path / f))]
             for f in ('dump.json', 'single.json')]
    assert names[0] == names[1]  # rank 0 dumped every image, in order
