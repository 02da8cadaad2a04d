import re

import pytest
import torch
import torchvision

from a3d_det.models.backbones import DenseNet3D, build_norm_layer
from a3d_det.models.fusion import A3DConv, AlignShiftConv, NoFusionConv
from a3d_det.registry import MODELS


@pytest.fixture(scope='module')
def tv_densenet_file(tmp_path_factory):
    """Random torchvision densenet121 weights (BN statistics made non-trivial)."""
    torch.manual_seed(0)
    net = torchvision.models.densenet121()
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 1.5)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
    path = tmp_path_factory.mktemp('weights') / 'densenet121.pth'
    torch.save(net.state_dict(), path)
    return net.eval(), path


def test_shapes_and_attributes():
    torch.manual_seed(0)
    net = MODELS.build(dict(type='DenseNet3D', num_slices=3, fusion=dict(type='A3DConv')))
    assert net.out_channels == (256, 512, 1024) and net.strides == (4, 8, 16)
    assert net.num_slices == 3
    outs = net(torch.randn(1, 1, 3, 32, 48))
    assert [tuple(o.shape) for o in outs] == [(1, 256, 3, 8, 12), (1, 512, 3, 4, 6),
                                             (1, 1024, 3, 2, 3)]


def test_fusion_only_in_dense_layers():
    net = DenseNet3D(num_slices=7, fusion=dict(type='A3DConv', init_noise=0.05))
    a3d = [n for n, m in net.named_modules() if isinstance(m, A3DConv)]
    assert len(a3d) == 2 * (6 + 12 + 24)
    assert all(re.fullmatch(r'denseblock\d\.denselayer\d+\.conv[12]', n) for n in a3d)
    assert isinstance(net.conv0, NoFusionConv)
    assert isinstance(net.transition1.conv, NoFusionConv)
    assert net.denseblock1.denselayer1.conv1.fusion_weight.shape == (7, 7, 64)
    assert net.denseblock1.denselayer1.conv1.init_noise == 0.05


def test_thickness_reaches_alignshift_only():
    torch.manual_seed(0)
    net = DenseNet3D(num_slices=3, fusion=dict(type='AlignShiftConv'),
                     block_config=(2, 2, 2)).eval()
    x = torch.randn(2, 1, 3, 32, 32)
    thin = net(x, torch.tensor([2.0, 2.0]))
    thick = net(x, torch.tensor([2.0, 10.0]))
    torch.testing.assert_close(thin[2][0], thick[2][0])
    assert not torch.allclose(thin[2][1], thick[2][1])
    with pytest.raises(ValueError, match='needs thickness'):
        net(x)
    # operators without thickness ignore it
    plain = DenseNet3D(num_slices=3, fusion=dict(type='TSMConv'), block_config=(2, 2, 2)).eval()
    torch.testing.assert_close(plain(x)[0], plain(x, torch.tensor([2.0, 10.0]))[0])


def test_pretrained_slices_equal_torchvision_2d(tv_densenet_file):
    """No fusion, eval: every slice of every output is torchvision's DenseNet-121
    dense-block output on the RGB image (0, slice, 0)."""
    tv, path = tv_densenet_file
    net = DenseNet3D(num_slices=3, fusion=dict(type='NoFusionConv'),
                     pretrained=str(path))
    net.init_weights()
    net.eval()
    torch.manual_seed(1)
    x = torch.randn(2, 1, 3, 32, 32)
    with torch.no_grad():
        outs = net(x)
        for d in range(3):
            rgb = torch.zeros(2, 3, 32, 32)
            rgb[:, 1] = x[:, 0, d]
            feats, h = [], rgb
            for name, layer in tv.features.named_children():
                h = layer(h)
                if name.startswith('denseblock'):
                    feats.append(h)
                if name == 'denseblock3':
                    break
            for out, ref in zip(outs, feats):
                torch.testing.assert_close(out[:, :, d], ref, rtol=1e-4, atol=1e-4)


def test_pretrained_with_a3d_and_old_style_keys(tv_densenet_file, tmp_path):
    tv, _ = tv_densenet_file
    old = {re.sub(r'(denselayer\d+\.(?:norm|conv))([12])\.', r'\1.\2.', k): v
           for k, v in tv.state_dict().items()}
    assert 'features.denseblock1.denselayer1.norm.1.weight' in old
    path = tmp_path / 'old.pth'
    torch.save(old, path)
    net = DenseNet3D(num_slices=3, fusion=dict(type='A3DConv'), pretrained=str(path))
    net.init_weights()
    layer = net.denseblock2.denselayer3
    assert torch.equal(layer.conv2.weight,
                       tv.features.denseblock2.denselayer3.conv2.weight)
    assert torch.equal(layer.norm1.running_var,
                       tv.features.denseblock2.denselayer3.norm1.running_var)
    assert torch.equal(net.conv0.weight, tv.features.conv0.weight[:, 1:2])
    noise = layer.conv1.fusion_weight - torch.eye(3).unsqueeze(-1)
    assert 0 < noise.abs().max() <= 0.1        # fusion weights keep their init


def test_pretrained_i3d_is_inflated(tv_densenet_file):
    tv, path = tv_densenet_file
    net = DenseNet3D(num_slices=3, fusion=dict(type='I3DConv'), pretrained=str(path))
    net.init_weights()
    w2d = tv.features.denseblock1.denselayer2.conv2.weight
    torch.testing.assert_close(net.denseblock1.denselayer2.conv2.weight,
                               w2d.unsqueeze(2).expand(-1, -1, 3, -1, -1) / 3)


def test_pretrained_errors(tv_densenet_file, tmp_path):
    tv, _ = tv_densenet_file
    net = DenseNet3D(pretrained=str(tmp_path / 'nope.pth'))   # building reads no file
    with pytest.raises(FileNotFoundError,
                       match=re.escape(str(tmp_path / 'nope.pth')) + r'.*torch\.save'):
        net.init_weights()
    state = tv.state_dict()
    bad = dict(state)
    bad['features.denseblock1.denselayer1.conv1.weight'] = torch.zeros(128, 64, 3, 3)
    del bad['features.norm0.running_mean']
    torch.save(bad, tmp_path / 'bad.pth')
    with pytest.raises(ValueError, match=r'missing norm0\.running_mean.*conv1\.weight: file'):
        DenseNet3D(pretrained=str(tmp_path / 'bad.pth')).init_weights()
    extra = dict(state)
    extra['features.somethingelse.weight'] = torch.zeros(3)
    torch.save(extra, tmp_path / 'extra.pth')
    with pytest.warns(UserWarning, match='somethingelse'):
        DenseNet3D(pretrained=str(tmp_path / 'extra.pth')).init_weights()


def test_init_cfg_pretrained_is_the_pretrained_argument(tv_densenet_file):
    """mmdet's ``init_cfg=dict(type='Pretrained')``: the file is converted in
    ``init_weights`` (A3D's fusion weights keep their init), not at building."""
    tv, path = tv_densenet_file
    net = DenseNet3D(num_slices=3, fusion=dict(type='A3DConv'),
                     init_cfg=dict(type='Pretrained', checkpoint=str(path)))
    w2d = tv.features.denseblock1.denselayer2.conv2.weight
    assert not torch.equal(net.denseblock1.denselayer2.conv2.weight, w2d)
    net.init_weights()
    assert torch.equal(net.denseblock1.denselayer2.conv2.weight, w2d)
    with pytest.raises(ValueError, match='not both'):
        DenseNet3D(pretrained=str(path), init_cfg=dict(type='Pretrained', checkpoint='x'))


def test_memory_efficient_gives_same_values_and_gradients():
    torch.manual_seed(0)
    a = DenseNet3D(num_slices=3, fusion=dict(type='A3DConv'), block_config=(2, 2, 2))
    b = DenseNet3D(num_slices=3, fusion=dict(type='A3DConv'), block_config=(2, 2, 2),
                   memory_efficient=True)
    b.load_state_dict(a.state_dict())
    x = torch.randn(2, 1, 3, 32, 32)
    la = sum(o.square().mean() for o in a(x))
    lb = sum(o.square().mean() for o in b(x))
    la.backward()
    lb.backward()
    torch.testing.assert_close(la, lb)
    ga = a.denseblock1.denselayer1.conv1.fusion_weight.grad
    gb = b.denseblock1.denselayer1.conv1.fusion_weight.grad
    assert ga.abs().sum() > 0
    torch.testing.assert_close(ga, gb, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize('fusion', ['A3DConv', 'AlignShiftConv'])
def test_memory_efficient_updates_norm_statistics_once_per_step(fusion):
    """The recompute of the checkpointed bottleneck in backward must not update
    the batch-norm statistics again: after two training steps every norm has
    ``num_batches_tracked == 2`` and the running statistics of the plain network."""
    torch.manual_seed(0)
    a = DenseNet3D(num_slices=3, fusion=dict(type=fusion), block_config=(2, 2, 2))
    b = DenseNet3D(num_slices=3, fusion=dict(type=fusion), block_config=(2, 2, 2),
                   memory_efficient=True)
    b.load_state_dict(a.state_dict())
    t = torch.tensor([2.0, 5.0])
    for step in range(2):
        x = torch.randn(2, 1, 3, 32, 32)
        for net in (a, b):
            sum(o.square().mean() for o in net(x, t)).backward()
    norms_a = dict(a.named_modules())
    for name, m in b.named_modules():
        if isinstance(m, torch.nn.BatchNorm3d):
            assert int(m.num_batches_tracked) == 2, name
            torch.testing.assert_close(m.running_mean, norms_a[name].running_mean)
            torch.testing.assert_close(m.running_var, norms_a[name].running_var)


def test_frozen_stages_and_norm_eval():
    net = DenseNet3D(num_slices=3, fusion=dict(type='NoFusionConv'), frozen_stages=1,
                     norm_eval=True, block_config=(2, 2, 2))
    net.train()
    assert not net.conv0.weight.requires_grad
    assert not net.denseblock1.denselayer1.conv2.weight.requires_grad
    assert net.transition1.conv.weight.requires_grad
    assert not net.norm0.training and not net.denseblock2.denselayer1.norm1.training
    with pytest.raises(ValueError, match='frozen_stages'):
        DenseNet3D(frozen_stages=5)


def test_bad_input_and_config_errors():
    net = DenseNet3D(num_slices=3, fusion=dict(type='NoFusionConv'), block_config=(1, 1, 1))
    with pytest.raises(ValueError, match=r'expects \(B, 1, 3, H, W\)'):
        net(torch.randn(1, 1, 5, 32, 32))
    with pytest.raises(ValueError, match='not a registered fusion operator'):
        DenseNet3D(fusion=dict(type='DenseNet3D'))
    with pytest.raises(ValueError, match='unknown norm type'):
        DenseNet3D(norm_cfg=dict(type='LN'))


def test_norm_layers():
    assert isinstance(build_norm_layer(dict(type='BN3d'), 8), torch.nn.BatchNorm3d)
    assert isinstance(build_norm_layer(dict(type='SyncBN'), 8), torch.nn.SyncBatchNorm)
    gn = build_norm_layer(dict(type='GN', num_groups=4, requires_grad=False), 8)
    assert isinstance(gn, torch.nn.GroupNorm) and not gn.weight.requires_grad
    net = DenseNet3D(norm_cfg=dict(type='GN', num_groups=8), block_config=(1, 1, 1))
    assert [o.shape[1] for o in net(torch.randn(1, 1, 3, 32, 32))] == [96, 80, 72]
    assert net.out_channels == (96, 80, 72)
