"""The FROC summary keys and what tools/test.py --json-out writes."""
from a3d_det.evaluation.froc_keys import FROC_KEYS, froc_summary, strip_metric_prefix


def test_froc_keys_are_the_papers_columns():
    assert FROC_KEYS == ('sens@0.5', 'sens@1', 'sens@2', 'sens@4', 'sens@8', 'sens@16',
                         'avg[0.5-4]')


def test_froc_summary_strips_prefix_and_orders():
    metrics = {f'deeplesion/{k}': i / 10 for i, k in enumerate(FROC_KEYS)}
    metrics['deeplesion/type/liver/sens@4'] = 0.9
    summary = froc_summary(metrics)
    assert list(summary) == list(FROC_KEYS)
    assert summary['sens@0.5'] == 0.0 and summary['avg[0.5-4]'] == 0.6
    # Without prefix (the metric's default) the same.
    assert froc_summary(strip_metric_prefix(metrics)) == summary


def test_froc_summary_other_metrics_keeps_scalars():
    assert froc_summary({'tiny/mse': 1.5, 'tiny/name': 'x'}) == {'mse': 1.5}


def test_strip_metric_prefix_keeps_breakdown_groups():
    metrics = {'deeplesion/sens@0.5': 0.1, 'sens@4/interval<=2mm': 0.7,
               'sens@1/interval<=2mm': 0.5, 'avg[0.5-4]': 0.3}
    assert strip_metric_prefix(metrics) == {
        'sens@0.5': 0.1, 'sens@4/interval<=2mm': 0.7,
        'sens@1/interval<=2mm': 0.5, 'avg[0.5-4]': 0.3}
