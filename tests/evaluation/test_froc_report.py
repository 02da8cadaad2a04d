"""The report shared by the metric and eval_froc.py: keys, groups, table."""
import numpy as np

from a3d_det.evaluation.froc_dump import image_record
from a3d_det.evaluation.froc_report import evaluate_froc


def _images():
    # image 0 (thin, 1.25 mm): a lung lesion found at .9, an FP at .8
    # image 1 (5 mm): a liver lesion found only at .3, an FP at .6
    return [image_record('a.png', [[0, 0, 9, 9], [100, 100, 109, 109]],
                         [.9, .8], [[0, 0, 9, 9]], 1.25, [8.], [5]),
            image_record('b.png', [[200, 200, 209, 209], [20, 20, 29, 29]],
                         [.6, .3], [[20, 20, 29, 29]], 5.0, [35.], [4])]


def test_overall_keys_and_values():
    m = evaluate_froc(_images()).metrics()
    assert list(m) == ['sens@0.5', 'sens@1', 'sens@2', 'sens@4', 'sens@8',
                       'sens@16', 'avg[0.5-4]']
    # curve: (0, .5) (.5, .5) (1, .5) (1, 1)
    assert m['sens@0.5'] == .5 and m['sens@1'] == 1 and m['sens@16'] == 1
    assert m['avg[0.5-4]'] == (.5 + 1 + 1 + 1) / 4


def test_breakdowns_share_fps_and_skip_empty_groups():
    rep = evaluate_froc(_images(), breakdowns=('slice_interval', 'size',
                                                'type'))
    m = rep.metrics()
    assert m['sens@0.5/interval<=2mm'] == 1.0
    assert m['sens@0.5/interval>2mm'] == 0.0
    assert m['sens@1/interval>2mm'] == 1.0
    assert m['sens@0.5/size<10mm'] == 1.0 and m['sens@0.5/size>=30mm'] == 0
    assert m['avg[0.5-4]/type=liver'] == .75
    assert not any('size10-30mm' in k or 'type=bone' in k for k in m)
    table = rep.table()
    assert '| all | 2 | 2 | 50.00 | 100.00 |' in table
    assert '| type=bone |  | 0 | - |' in table


def test_iobb_and_threshold_change_matching():
    # a prediction covering a quarter of a lesion: IoU .25, IoBB 1
    imgs = [image_record('a.png', [[0, 0, 9, 9]], [.9], [[0, 0, 19, 19]])]
    assert evaluate_froc(imgs).metrics()['sens@16'] == 0.0
    assert evaluate_froc(imgs, criterion='iobb').metrics()['sens@16'] == 1.0
    assert evaluate_froc(imgs, iou_thr=.25).metrics()['sens@16'] == 1.0
    custom = evaluate_froc(imgs, fp_levels=(3,)).metrics()
    assert list(custom) == ['sens@3', 'avg[0.5-4]']
    np.testing.assert_equal(custom['sens@3'], 0.0)
