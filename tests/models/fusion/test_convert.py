"""convert_2d_to_3d: a converted torchvision network equals the 2D one on
every slice (no fusion, A3D without noise); every operator converts ResNet-18
and trains; what cannot be converted is named by its module path."""
import copy
import pickle
from collections import OrderedDict

import pytest
import torch
import torchvision
from torch import nn

from a3d_det.models.fusion import (A3DConv, AlignShiftConv, BaseFusionConv, NoFusionConv,
                                   SliceWise, convert_2d_to_3d)
from tests.helpers.model_inputs import randomise_bn

OPERATORS = ['NoFusionConv', 'I3DConv', 'P3DConv', 'ACSConv', 'TSMConv', 'AlignShiftConv',
             'A3DConv']
EXACT = [dict(type='NoFusionConv'), dict(type='A3DConv', init_noise=0.0)]


def _resnet18_body() -> nn.Module:
    """torchvision ResNet-18 up to its global pooling (the fc dropped)."""
    torch.manual_seed(0)
    net = torchvision.models.resnet18()
    return randomise_bn(nn.Sequential(OrderedDict(list(net.named_children())[:-1])))


def _per_slice(net2d: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The 2D network on every slice of (B, C, D, H, W), stacked on dim 2."""
    return torch.stack([net2d(x[:, :, d]) for d in range(x.shape[2])], dim=2)


@pytest.mark.parametrize('fusion', EXACT, ids=lambda f: f['type'])
@pytest.mark.parametrize('arch', ['resnet18', 'densenet121'])
def test_equals_2d_network_on_every_slice(arch, fusion):
    if arch == 'resnet18':
        net2d = _resnet18_body()
    else:
        torch.manual_seed(0)
        net2d = randomise_bn(torchvision.models.densenet121().features)
    net2d.eval()
    net3d = convert_2d_to_3d(net2d, fusion=fusion, num_slices=3).eval()
    convs = [m for m in net3d.modules() if isinstance(m, BaseFusionConv)]
    assert len(convs) == sum(isinstance(m, nn.Conv2d) for m in net2d.modules())
    assert all(type(m).__name__ == fusion['type'] for m in convs)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in net3d.modules())
    # the input network is untouched
    assert any(isinstance(m, nn.Conv2d) for m in net2d.modules())
    x = torch.randn(2, 3, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        out, expected = net3d(x), _per_slice(net2d, x)
    assert out.shape == expected.shape
    torch.testing.assert_close(out, expected, rtol=1e-4, atol=1e-4)


def test_batch_norm_training_equals_2d_over_all_slices():
    """BatchNorm3d's statistics over (B, D, H, W) are BatchNorm2d's over the
    B * D slices: outputs and running statistics agree in training too."""
    torch.manual_seed(0)
    net2d = randomise_bn(nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8),
                                        nn.ReLU())).train()
    net3d = convert_2d_to_3d(net2d, fusion=dict(type='NoFusionConv'), num_slices=4)
    assert net3d.training and net3d.network[1].training
    x = torch.randn(2, 3, 4, 16, 16)
    out = net3d(x)
    flat = x.transpose(1, 2).reshape(8, 3, 16, 16)
    expected = net2d(flat).reshape(2, 4, 8, 16, 16).transpose(1, 2)
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5)
    bn2d, bn3d = net2d[1], net3d.network[1]
    assert isinstance(bn3d, nn.BatchNorm3d)
    torch.testing.assert_close(bn3d.running_mean, bn2d.running_mean)
    torch.testing.assert_close(bn3d.running_var, bn2d.running_var)


def test_grey_input_takes_the_green_channel():
    net2d = _resnet18_body().eval()
    net3d = convert_2d_to_3d(net2d, fusion=dict(type='NoFusionConv'), num_slices=3,
                             in_channels=1).eval()
    assert net3d.network.conv1.in_channels == 1
    grey = torch.randn(1, 1, 3, 64, 64, generator=torch.Generator().manual_seed(2))
    rgb = torch.cat([torch.zeros_like(grey), grey, torch.zeros_like(grey)], dim=1)
    with torch.no_grad():
        torch.testing.assert_close(net3d(grey), _per_slice(net2d, rgb), rtol=1e-4, atol=1e-4)
    with pytest.raises(ValueError, match="in_channels=2 does not fit the first convolution "
                                         "'conv1'"):
        convert_2d_to_3d(net2d, fusion=dict(type='NoFusionConv'), num_slices=3, in_channels=2)


def test_pools_upsample_and_sync_bn_act_in_plane():
    torch.manual_seed(0)
    net2d = nn.Sequential(
        nn.Conv2d(2, 4, 3, padding=1), nn.SyncBatchNorm(4), nn.ReLU(),
        nn.MaxPool2d(3, stride=2, padding=1, ceil_mode=True),
        nn.AvgPool2d(2, stride=2, count_include_pad=False),
        nn.Upsample(scale_factor=2, mode='bilinear', align_corners=False),
        nn.Dropout2d(0.5), nn.AdaptiveAvgPool2d((2, 3))).eval()
    randomise_bn(net2d)
    with torch.no_grad():
        net2d[1].running_mean.uniform_(-0.2, 0.2)
        net2d[1].running_var.uniform_(0.5, 1.5)
    net3d = convert_2d_to_3d(net2d, fusion=dict(type='A3DConv', init_noise=0.0),
                             num_slices=5).eval()
    types = [type(m) for m in net3d.network]
    assert types == [A3DConv, nn.SyncBatchNorm, nn.ReLU, nn.MaxPool3d, nn.AvgPool3d,
                     SliceWise, nn.Dropout3d, nn.AdaptiveAvgPool3d]
    assert net3d.network[3].kernel_size == (1, 3, 3) and net3d.network[3].stride == (1, 2, 2)
    assert net3d.network[7].output_size == (None, 2, 3)
    x = torch.randn(2, 2, 5, 19, 23)
    with torch.no_grad():
        out = net3d(x)
        assert out.shape == (2, 4, 5, 2, 3)
        torch.testing.assert_close(out, _per_slice(net2d, x), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize('slices', [3, 5])
@pytest.mark.parametrize('op', OPERATORS)
def test_every_operator_converts_resnet18_and_trains(op, slices):
    net3d = convert_2d_to_3d(_resnet18_body(), fusion=dict(type=op), num_slices=slices,
                             in_channels=1).train()
    ops = [m for m in net3d.modules() if isinstance(m, BaseFusionConv)]
    assert len(ops) == 20 and all(type(m).__name__ == op for m in ops)
    assert all(m.num_slices == slices for m in ops)
    x = torch.randn(2, 1, slices, 32, 32, generator=torch.Generator().manual_seed(3))
    out = net3d(x, torch.tensor([1.0, 5.0]))
    assert out.shape == (2, 512, slices, 1, 1)
    out.pow(2).sum().backward()
    for m in ops:
        for name, p in m.named_parameters():
            assert p.grad is not None and torch.isfinite(p.grad).all(), name
    assert ops[0].weight.grad.abs().sum() > 0
    if op == 'A3DConv':
        assert ops[5].fusion_weight.grad.abs().sum() > 0


def test_thickness_reaches_every_alignshift_operator():
    torch.manual_seed(0)
    net3d = convert_2d_to_3d(_resnet18_body(), fusion=dict(type='AlignShiftConv'),
                             num_slices=3).eval()
    seen = []
    handles = [m.register_forward_hook(lambda mod, args, kw, out: seen.append(kw['thickness']),
                                       with_kwargs=True)
               for m in net3d.modules() if isinstance(m, AlignShiftConv)]
    x = torch.randn(2, 3, 3, 32, 32)
    with torch.no_grad():
        thin = net3d(x, torch.tensor([2.0, 2.0]))
        thick = net3d(x, torch.tensor([2.0, 10.0]))
    assert len(seen) == 2 * 20
    assert all(t.tolist() == [2.0, 2.0] for t in seen[:20])
    torch.testing.assert_close(thin[0], thick[0])
    assert not torch.allclose(thin[1], thick[1])
    with pytest.raises(ValueError, match='needs thickness'):
        net3d(x)
    for h in handles:
        h.remove()
    # the converter's hooks survive copying and pickling (no closures, no patched class)
    for clone in (copy.deepcopy(net3d), pickle.loads(pickle.dumps(net3d))):
        with torch.no_grad():
            torch.testing.assert_close(clone(x, torch.tensor([2.0, 10.0])), thick)


def test_errors_name_the_module_path():
    torch.manual_seed(0)
    with pytest.raises(ValueError, match=r"cannot convert 'fc' \(Linear\)"):
        convert_2d_to_3d(torchvision.models.resnet18(), num_slices=3)
    stem = nn.Sequential(OrderedDict(conv=nn.Conv2d(3, 8, 3), norm=nn.LayerNorm(8)))
    net = nn.Sequential(OrderedDict(stem=stem))
    with pytest.raises(ValueError, match=r"cannot convert 'stem\.norm' \(LayerNorm\)"):
        convert_2d_to_3d(net, num_slices=3)
    grouped = nn.Sequential(OrderedDict(block=nn.Sequential(nn.Conv2d(8, 8, 3, groups=4))))
    with pytest.raises(ValueError, match=r"cannot convert 'block\.0' .* to A3DConv: .*groups"):
        convert_2d_to_3d(grouped, num_slices=3)
    with pytest.raises(ValueError, match=r"cannot convert 'layer1\.0\.conv1' .* to "
                                         r"ACSConv: .*odd kernel_size"):
        block = nn.Sequential(OrderedDict(conv1=nn.Conv2d(3, 4, 2)))
        convert_2d_to_3d(nn.Sequential(OrderedDict(layer1=nn.Sequential(block))),
                         fusion=dict(type='ACSConv'), num_slices=3)
    with pytest.raises(ValueError, match='registered fusion operator'):
        convert_2d_to_3d(stem, fusion=dict(type='Linear'), num_slices=3)


def test_wrong_slice_count_is_refused():
    net3d = convert_2d_to_3d(nn.Conv2d(1, 2, 3), fusion=dict(type='NoFusionConv'),
                             num_slices=3)
    assert isinstance(net3d.network, NoFusionConv)
    with pytest.raises(ValueError, match=r'expects \(B, C, 3, H, W\)'):
        net3d(torch.randn(1, 1, 5, 8, 8))
