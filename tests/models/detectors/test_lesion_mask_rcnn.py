import pytest
import torch

from a3d_det.registry import MODELS

LOSS_KEYS = {'loss_rpn_cls', 'loss_rpn_bbox', 'loss_cls', 'loss_bbox', 'loss_mask'}


def _batch(samples, inputs):
    return dict(inputs=inputs, data_samples=samples)


def test_loss_half_empty_and_empty_gt(tiny_detector, sample_factory):
    make_sample = sample_factory
    inputs = [torch.randn(1, 3, 64, 64), torch.randn(1, 3, 60, 52)]
    for boxes in ([[[8, 8, 30, 40]], []], [[], []]):
        samples = [make_sample(64, 64, boxes[0]), make_sample(60, 52, boxes[1])]
        data = tiny_detector.data_preprocessor(_batch(samples, inputs), True)
        losses = tiny_detector(**data, mode='loss')
        assert set(losses) == LOSS_KEYS
        assert all(torch.isfinite(v) for v in losses.values())
        sum(losses.values()).backward()


def test_thickness_reaches_the_backbone(tiny_detector, sample_factory):
    make_sample = sample_factory
    samples = [make_sample(64, 64, [[8, 8, 30, 40]], thickness=5.0),
               make_sample(64, 64, [], thickness=1.25)]
    data = tiny_detector.data_preprocessor(_batch(samples, [torch.randn(1, 3, 64, 64)] * 2), True)
    tiny_detector(**data, mode='loss')
    assert tiny_detector.backbone.seen_thickness.tolist() == [5.0, 1.25]


def test_missing_masks_is_a_clear_error(tiny_detector, sample_factory):
    make_sample = sample_factory
    samples = [make_sample(64, 64, [[8, 8, 30, 40]], with_masks=False)]
    data = tiny_detector.data_preprocessor(_batch(samples, [torch.randn(1, 3, 64, 64)]), True)
    with pytest.raises(ValueError, match='with_mask=True'):
        tiny_detector(**data, mode='loss')


def test_slice_count_mismatch_is_a_clear_error(tiny_detector, sample_factory):
    make_sample = sample_factory
    samples = [make_sample(64, 64, [])]
    data = tiny_detector.data_preprocessor(_batch(samples, [torch.randn(1, 7, 64, 64)]), True)
    with pytest.raises(ValueError, match='num_slices'):
        tiny_detector(**data, mode='loss')


def test_predict_boxes_in_original_pixels_after_resize(tiny_detector, sample_factory):
    make_sample = sample_factory
    tiny_detector.eval()
    image = torch.randn(1, 3, 64, 64)

    def predict(scale):
        sample = make_sample(64, 64, [], scale=scale)
        with torch.no_grad():
            data = tiny_detector.data_preprocessor(_batch([sample], [image]))
            return tiny_detector(**data, mode='predict')[0].pred_instances

    same, resized = predict(1.0), predict(0.5)
    assert same.bboxes.shape[0] > 0 and same.bboxes.shape == resized.bboxes.shape
    # the 64 x 64 input was resized by 0.5 from a 128 x 128 original
    assert torch.allclose(resized.bboxes, same.bboxes * 2, atol=1e-4)
    assert resized.masks.shape[1:] == (128, 128) and resized.masks.dtype == torch.bool
    assert same.masks.shape[1:] == (64, 64)
    assert (resized.labels == 0).all() and resized.labels.dtype == torch.int64
    assert torch.equal(resized.scores, same.scores)
    assert resized.bboxes.shape[0] <= 50


def test_tensor_mode_returns_raw_outputs(tiny_detector):
    tiny_detector.eval()
    with torch.no_grad():
        outs = tiny_detector(torch.randn(2, 1, 3, 64, 64), mode='tensor')
    feature, objectness, deltas, cls_score, bbox_pred = outs
    assert feature.shape == (2, 16, 16, 16)
    assert objectness.shape == (2, 18, 16, 16) and deltas.shape == (2, 72, 16, 16)
    assert cls_score.shape[1] == 2 and bbox_pred.shape[1] == 4


def test_train_step_updates_parameters(sample_factory, detector_cfg_factory):
    make_sample, tiny_detector_cfg = sample_factory, detector_cfg_factory
    from mmengine.optim import OptimWrapper
    torch.manual_seed(0)
    model = MODELS.build(tiny_detector_cfg())
    optim = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.01))
    before = model.neck.lateral_convs[0].weight.clone()
    data = dict(inputs=[torch.randn(1, 3, 64, 64)],
                data_samples=[make_sample(64, 64, [[8, 8, 30, 40]])])
    log = model.train_step(data, optim)
    assert 'loss' in log and torch.isfinite(log['loss'])
    assert not torch.equal(before, model.neck.lateral_convs[0].weight)


def test_unknown_mode(tiny_detector):
    with pytest.raises(ValueError, match='mode'):
        tiny_detector(torch.zeros(1, 1, 3, 32, 32), mode='bogus')


def test_thickness_checked_once_per_batch_for_alignshift(sample_factory, detector_cfg_factory):
    """AlignShift's thickness is validated on the host, naming the sample;
    backbones that do not read it accept an unknown thickness."""
    make_sample = sample_factory
    cfg = detector_cfg_factory()
    cfg['backbone'] = dict(type='DenseNet3D', num_slices=3, fusion=dict(type='AlignShiftConv'),
                           block_config=(1, 1, 1), num_init_features=8, growth_rate=4,
                           bn_size=2)
    torch.manual_seed(0)
    model = MODELS.build(cfg)
    assert model.uses_thickness
    inputs = [torch.randn(1, 3, 64, 64)] * 2
    ok = [make_sample(64, 64, [[8, 8, 30, 40]], thickness=5.0),
          make_sample(64, 64, [], thickness=0.625)]
    model(**model.data_preprocessor(_batch(ok, inputs), True), mode='loss')
    bad = [make_sample(64, 64, [], thickness=2.0), make_sample(64, 64, [], thickness=float('nan'))]
    with pytest.raises(ValueError, match=r'thickness of .*010\.png.*nan'):
        model(**model.data_preprocessor(_batch(bad, inputs), True), mode='loss')
    plain = MODELS.build(detector_cfg_factory())
    assert not plain.uses_thickness
    plain(**plain.data_preprocessor(_batch(bad, inputs), True), mode='loss')
