import pytest
import torch

from a3d_det.registry import MODELS


def test_smooth_l1_beta_and_avg_factor():
    loss = MODELS.build(dict(type='SmoothL1Loss', beta=1.0, loss_weight=2.0))
    pred = torch.tensor([[0.5, 0.0, 3.0, 0.0]])
    target = torch.zeros(1, 4)
    # 0.5 * 0.5^2 / 1 + (3 - 0.5) = 0.125 + 2.5, summed, / avg_factor 4, x2
    assert loss(pred, target, avg_factor=4).item() == pytest.approx(2 * 2.625 / 4)
    small_beta = MODELS.build(dict(type='SmoothL1Loss', beta=1 / 9))
    assert small_beta(pred, target).item() == pytest.approx((0.5 - 1 / 18) + (3 - 1 / 18))


def test_smooth_l1_rejects_bad_beta():
    with pytest.raises(ValueError, match='beta'):
        MODELS.build(dict(type='SmoothL1Loss', beta=0.0))


@pytest.mark.parametrize('cfg', [dict(type='DiceLoss'), dict(type='BinaryCrossEntropyLoss'),
                                 dict(type='CrossEntropyLoss')])
def test_empty_input_gives_zero_with_gradient(cfg):
    loss = MODELS.build(cfg)
    if cfg['type'] == 'CrossEntropyLoss':
        pred = torch.zeros(0, 2, requires_grad=True)
        value = loss(pred, torch.zeros(0, dtype=torch.long))
    else:
        pred = torch.zeros(0, 28, 28, requires_grad=True)
        value = loss(pred, torch.zeros(0, 28, 28))
    assert value.item() == 0.0
    value.backward()
    assert pred.grad is not None


def test_dice_loss_perfect_and_disjoint():
    loss = MODELS.build(dict(type='DiceLoss', eps=1e-6))
    target = torch.zeros(2, 8, 8)
    target[:, 2:6, 2:6] = 1
    perfect = (target * 2 - 1) * 50  # logits: +50 inside, -50 outside
    assert loss(perfect, target).item() == pytest.approx(0.0, abs=1e-5)
    disjoint = -perfect
    assert loss(disjoint, target).item() == pytest.approx(1.0, abs=1e-5)


def test_dice_loss_value_on_uniform_prediction():
    loss = MODELS.build(dict(type='DiceLoss', eps=0.0, loss_weight=1.0))
    target = torch.zeros(1, 4, 4)
    target[0, :2] = 1  # 8 of 16 pixels
    logits = torch.zeros(1, 4, 4)  # p = 0.5 everywhere
    # dice = 2 * (0.5 * 8) / (0.5 * 16 + 8) = 0.5
    assert loss(logits, target).item() == pytest.approx(0.5)


def test_bce_matches_torch():
    loss = MODELS.build(dict(type='BinaryCrossEntropyLoss', loss_weight=0.5))
    logits = torch.randn(3, 5, 5, generator=torch.Generator().manual_seed(0))
    target = (torch.rand(3, 5, 5, generator=torch.Generator().manual_seed(1)) > 0.5)
    expected = torch.nn.functional.binary_cross_entropy_with_logits(logits, target.float())
    assert loss(logits, target).item() == pytest.approx(0.5 * expected.item())


def test_cross_entropy_matches_torch():
    loss = MODELS.build(dict(type='CrossEntropyLoss'))
    logits = torch.tensor([[2.0, 0.0], [0.0, 1.0]])
    labels = torch.tensor([0, 1])
    expected = torch.nn.functional.cross_entropy(logits, labels)
    assert loss(logits, labels).item() == pytest.approx(expected.item())


def test_dice_loss_matches_published_smoothing():
    """The base config's DiceLoss(eps=0.01) is the published per-RoI Dice with
    smooth = 0.01 (deeplesion/losses/diceloss.py), restated here."""
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(5, 7, 7, generator=g) * 3
    target = (torch.rand(5, 7, 7, generator=g) > 0.7).float()
    target[0] = 0  # an RoI without foreground: the smoothing decides its loss
    p = logits.sigmoid()
    dice = (2 * (p * target).sum(dim=(1, 2)) + 0.01) / (p.sum(dim=(1, 2)) + target.sum(dim=(1, 2))
                                                      + 0.01)
    expected = 1 - dice.mean()
    loss = MODELS.build(dict(type='DiceLoss', eps=0.01))
    torch.testing.assert_close(loss(logits, target), expected)
    assert not torch.isclose(MODELS.build(dict(type='DiceLoss', eps=1.0))(logits, target),
                             expected)
