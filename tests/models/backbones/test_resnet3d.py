"""ResNet3D: torchvision's ResNet converted to 3D, layers 1-3, ImageNet-style
weights loaded in init_weights."""
import pytest
import torch
import torchvision
from torch import nn

from a3d_det.models.backbones import ResNet3D
from a3d_det.models.fusion import A3DConv, I3DConv, NoFusionConv
from a3d_det.registry import MODELS
from tests.helpers.model_inputs import randomise_bn


@pytest.fixture(scope='module')
def tv_resnet50_file(tmp_path_factory):
    """Random torchvision resnet50 weights (BN statistics made non-trivial)."""
    torch.manual_seed(0)
    net = randomise_bn(torchvision.models.resnet50())
    path = tmp_path_factory.mktemp('weights') / 'resnet50.pth'
    torch.save(net.state_dict(), path)
    return net.eval(), path


def _layer3_2d(net: nn.Module, x: torch.Tensor) -> torch.Tensor:
    x = net.maxpool(net.relu(net.bn1(net.conv1(x))))
    return net.layer3(net.layer2(net.layer1(x)))


def test_resnet50_reproduces_torchvision_on_every_slice(tv_resnet50_file):
    net2d, path = tv_resnet50_file
    net = MODELS.build(dict(type='ResNet3D', depth=50, num_slices=3,
                            fusion=dict(type='NoFusionConv'), pretrained=str(path)))
    assert net.out_channels == (256, 512, 1024) and net.strides == (4, 8, 16)
    assert net.num_slices == 3
    net.init_weights()
    net.eval()
    x = torch.randn(1, 1, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        outs = net(x)
        assert [tuple(o.shape) for o in outs] == [(1, 256, 3, 16, 16), (1, 512, 3, 8, 8),
                                                 (1, 1024, 3, 4, 4)]
        for d in range(3):
            # the grey slice is the green channel of an RGB image (0, slice, 0)
            rgb = torch.zeros(1, 3, 64, 64)
            rgb[:, 1] = x[:, 0, d]
            expected = _layer3_2d(net2d, rgb)
            assert expected.abs().max() > 1
            torch.testing.assert_close(outs[2][:, :, d], expected, rtol=1e-3, atol=1e-3)


def test_building_reads_no_file_and_init_weights_names_the_missing_one(tmp_path):
    missing = tmp_path / 'nowhere' / 'resnet18.pth'
    net = ResNet3D(depth=18, pretrained=str(missing))          # builds without the file
    with pytest.raises(FileNotFoundError, match=str(missing)):
        net.init_weights()
    via_init_cfg = ResNet3D(depth=18, init_cfg=dict(type='Pretrained', checkpoint=str(missing)))
    assert via_init_cfg.pretrained == str(missing)


def test_pretrained_goes_through_the_operators_conversion_rule(tmp_path):
    torch.manual_seed(0)
    net2d = torchvision.models.resnet18()
    path = tmp_path / 'resnet18.pth'
    torch.save({'state_dict': {f'module.{k}': v for k, v in net2d.state_dict().items()}}, path)
    net = ResNet3D(depth=18, num_slices=5, fusion=dict(type='I3DConv'), pretrained=str(path))
    net.init_weights()
    conv = net.layer2[0].conv1
    assert isinstance(conv, I3DConv) and conv.weight.shape == (128, 64, 3, 3, 3)
    for t in range(3):          # I3D: K copies of W2D / K along depth
        torch.testing.assert_close(conv.weight[:, :, t], net2d.layer2[0].conv1.weight / 3)
    assert isinstance(net.conv1, NoFusionConv) and isinstance(net.layer2[0].downsample[0],
                                                              NoFusionConv)
    torch.testing.assert_close(net.conv1.weight, net2d.conv1.weight[:, 1:2])
    torch.testing.assert_close(net.layer3[1].bn2.running_var, net2d.layer3[1].bn2.running_var)
    # a deeper network's file: the extra blocks are reported, not loaded
    deeper = tmp_path / 'resnet34.pth'
    torch.save(torchvision.models.resnet34().state_dict(), deeper)
    with pytest.warns(UserWarning, match=r"unexpected keys .*'layer1\.2\.conv1\.weight'"):
        ResNet3D(depth=18, pretrained=str(deeper)).init_weights()
    wrong = tmp_path / 'wrong.pth'
    state = net2d.state_dict()
    del state['layer1.0.conv1.weight']
    state['layer2.0.bn1.weight'] = torch.ones(3)
    torch.save(state, wrong)
    with pytest.raises(ValueError, match=r'does not fit ResNet3D\(depth=18\): missing '
                                         r'layer1\.0\.conv1\.weight; layer2\.0\.bn1\.weight'):
        ResNet3D(depth=18, pretrained=str(wrong)).init_weights()


@pytest.mark.parametrize('depth,channels', [(18, (64, 128, 256)), (34, (64, 128, 256)),
                                            (50, (256, 512, 1024)), (101, (256, 512, 1024))])
def test_depths_channels_and_fusion_placement(depth, channels):
    with torch.device('meta'):
        net = ResNet3D(depth=depth, num_slices=7, fusion=dict(type='A3DConv'))
        outs = net(torch.empty(2, 1, 7, 64, 96))
    assert net.out_channels == channels and net.strides == (4, 8, 16)
    assert [tuple(o.shape) for o in outs] == [(2, c, 7, 64 // s, 96 // s)
                                             for c, s in zip(channels, (4, 8, 16))]
    fused = [n for n, m in net.named_modules() if isinstance(m, A3DConv)]
    plain = [n for n, m in net.named_modules() if isinstance(m, NoFusionConv)]
    assert plain[0] == 'conv1' and all('downsample' in n for n in plain[1:])
    assert len(plain) == (3 if depth < 50 else 4)
    assert fused and all(n.startswith('layer') for n in fused)
    assert not hasattr(net, 'layer4') and not hasattr(net, 'fc')


def test_thickness_wrong_depth_and_arguments():
    torch.manual_seed(0)
    net = ResNet3D(depth=18, num_slices=3, fusion=dict(type='AlignShiftConv')).eval()
    x = torch.randn(2, 1, 3, 32, 32)
    with torch.no_grad():
        thin, thick = net(x, torch.tensor([2.0, 2.0]))[2], net(x, torch.tensor([2.0, 10.0]))[2]
    torch.testing.assert_close(thin[0], thick[0])
    assert not torch.allclose(thin[1], thick[1])
    with pytest.raises(ValueError, match='needs thickness'):
        net(x)
    with pytest.raises(ValueError, match=r'expects \(B, 1, 3, H, W\)'):
        net(torch.randn(1, 1, 5, 32, 32))
    with pytest.raises(ValueError, match='depth must be one of'):
        ResNet3D(depth=152)
    with pytest.raises(ValueError, match='frozen_stages'):
        ResNet3D(depth=18, frozen_stages=4)


def test_frozen_stages_norm_eval_and_norm_cfg():
    net = ResNet3D(depth=18, frozen_stages=1, norm_eval=True).train()
    assert not any(p.requires_grad for p in net.conv1.parameters())
    assert not any(p.requires_grad for p in net.layer1.parameters())
    assert all(p.requires_grad for p in net.layer2.parameters())
    assert not net.layer1.training and net.layer2.training
    assert not any(m.training for m in net.modules() if isinstance(m, nn.BatchNorm3d))
    gn = ResNet3D(depth=18, norm_cfg=dict(type='GN', num_groups=32))
    assert not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in gn.modules())
    assert isinstance(gn.layer3[1].bn2, nn.GroupNorm)
    sync = ResNet3D(depth=18, norm_cfg=dict(type='SyncBN'))
    assert isinstance(sync.bn1, nn.SyncBatchNorm)
