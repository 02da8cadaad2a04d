"""tools/analysis/benchmark.py --task speed, run small in-process."""
from __future__ import annotations

import statistics

import pytest
import torch

from a3d_det.utils.benchmarks import speed as speed_task
from a3d_det.utils.errors import UserInputError
from a3d_det.utils.timing import Timings
from tests.helpers.tools import benchmark_args


def test_torchvision_reference_ends_at_denseblock3():
    features = speed_task.torchvision_features(torch.device('cpu'))
    assert list(dict(features.named_children()))[-1] == 'denseblock3'
    with torch.no_grad():
        assert features.eval()(torch.randn(3, 3, 64, 64)).shape == (3, 1024, 4, 4)


def test_summary_ratios_are_medians_of_per_round_ratios():
    t = {('inference', 3, 'torchvision'): Timings(wall=[1.0, 2.0, 4.0], cpu=[1.0, 1.0, 1.0]),
         ('inference', 3, 'NoFusionConv'): Timings(wall=[0.9, 2.2, 3.0], cpu=[2.0, 1.0, 0.5]),
         ('inference', 3, 'A3DConv'): Timings(wall=[1.0, 2.0, 4.4], cpu=[1.0, 1.0, 1.0])}
    rows = {r['what']: r for r in speed_task.summarise(t, [3])}
    nf = rows['backbone inference: DenseNet3D no fusion / torchvision']
    assert nf['ratio'] == pytest.approx(statistics.median([0.9, 1.1, 0.75]))
    assert nf['cpu_ratio'] == pytest.approx(1.0)
    assert nf['ms'] == pytest.approx(2200) and nf['base_ms'] == pytest.approx(2000)
    a3d = rows['backbone inference: DenseNet3D A3D / no fusion']
    assert a3d['ratio'] == pytest.approx(statistics.median([1 / 0.9, 2 / 2.2, 4.4 / 3.0]))
    assert 'detector train_step: A3D / no fusion' not in rows     # not timed, not shown
    table = speed_task.format_table(list(rows.values()))
    assert '| backbone inference: DenseNet3D no fusion / torchvision | 3 | **0.90x** |' in table


def test_backbone_part_runs_small(capsys):
    result = speed_task.run(benchmark_args('speed', '--parts', 'backbone', '--size', '32',
                                           '--slices', '3', '--rounds', '1', '--warmup', '0'))
    whats = [r['what'] for r in result['rows']]
    assert len(whats) == 6 and all(r['slices'] == 3 for r in result['rows'])
    assert len(result['timings']) == 6            # 3 models x (inference, fwd+bwd)
    assert 'DenseNet3D A3D / torchvision' in capsys.readouterr().out


def test_detector_models_share_weights_and_boxes():
    """A3D holds the no-fusion weights and P = I: both detectors post-process
    the same boxes, also after training steps (batch-norm statistics move)."""
    cases = speed_task.detector_cases(3, 64, torch.device('cpu'), amp=False)
    assert sorted(cases) == sorted((m, 3, f) for m in ('train_step', 'test_step')
                                   for f in speed_task.FUSIONS)
    nofusion = cases[('test_step', 3, 'NoFusionConv')].__defaults__[0]
    a3d = cases[('test_step', 3, 'A3DConv')].__defaults__[0]
    a3d_state = a3d.state_dict()
    for name, value in nofusion.state_dict().items():
        assert torch.equal(value, a3d_state[name]), name
    fusion = [v for k, v in a3d_state.items() if k.endswith('fusion_weight')]
    assert fusion and all(torch.equal(p, torch.eye(3).unsqueeze(-1).expand_as(p))
                          for p in fusion)
    for fusion_type in speed_task.FUSIONS:
        cases[('train_step', 3, fusion_type)]()
    from a3d_det.utils.benchmarks.train import make_batch
    batch = make_batch(3, 64)
    outputs = [m.eval().test_step(batch)[0].pred_instances for m in (nofusion, a3d)]
    torch.testing.assert_close(outputs[0].bboxes, outputs[1].bboxes)
    torch.testing.assert_close(outputs[0].scores, outputs[1].scores)


def test_user_errors():
    with pytest.raises(UserInputError, match='odd'):
        speed_task.run(benchmark_args('speed', '--slices', '4'))
    with pytest.raises(UserInputError, match='multiples of 32'):
        speed_task.run(benchmark_args('speed', '--size', '100'))
