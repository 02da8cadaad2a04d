"""tools/analysis/get_flops.py: Table 1's figures and exact counts at any shape."""
import csv
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers.tools import load_tool
from tests.helpers.tools import run_main as run_tool_main

ROOT = Path(__file__).resolve().parents[2]
TABLE1 = Path('/work/shared/reference/table1_gflops.csv')
get_flops = load_tool('analysis/get_flops.py')

# Table 1 of the paper, GFLOPs of the backbone at 512 x 512 (3 / 7 slices).
PAPER = {'NoFusionConv': (40.64, 94.83), 'I3DConv': (78.69, 183.61),
         'P3DConv': (67.79, 158.18), 'ACSConv': (40.64, 94.83), 'TSMConv': (40.64, 94.83),
         'AlignShiftConv': (40.64, 94.83), 'A3DConv': (40.64, 94.83)}


def gflops(fusion, d, shape=(512, 512), table1=True):
    r = get_flops.backbone_flops(dict(type='DenseNet3D', num_slices=d,
                                      fusion=dict(type=fusion)), shape)
    return (r.flops_table1 if table1 else r.flops) / 1e9


def test_reference_csv_matches_the_paper_values_used_here():
    if not TABLE1.is_file():
        pytest.skip('shared reference table not present')
    with open(TABLE1) as f:
        for row in csv.DictReader(f):
            assert PAPER[row['operator']] == (float(row['gflops_3slice']),
                                              float(row['gflops_7slice']))


@pytest.mark.parametrize('fusion', sorted(PAPER))
def test_table1_figures_at_512(fusion):
    for d, paper in zip((3, 7), PAPER[fusion]):
        ours = gflops(fusion, d)
        if fusion == 'P3DConv':
            assert abs(ours - paper) / paper < 0.015
        else:
            assert round(ours, 2) == paper


def densenet_nofusion_flops(d, h, w):
    """Independent closed form of the truncated DenseNet-121 count."""
    def conv_out(n, k, s, p):
        return (n + 2 * p - k) // s + 1
    h, w = conv_out(h, 7, 2, 3), conv_out(w, 7, 2, 3)
    total = 64 * d * h * w * (1 * 49 + 2 + 1)              # conv0, norm0, relu0
    total += 64 * d * h * w                                 # pool0 reads its input
    h, w = conv_out(h, 3, 2, 1), conv_out(w, 3, 2, 1)
    c = 64
    for block, layers in enumerate((6, 12, 24)):
        if block:                                           # transition
            px = d * h * w
            total += c * px * 3 + (c // 2) * c * px + (c // 2) * px   # norm+relu, conv, pool
            c, h, w = c // 2, h // 2, w // 2
        px = d * h * w
        for _ in range(layers):
            total += c * px * 3 + 128 * c * px              # norm1+relu1, conv1
            total += 128 * px * 3 + 32 * 128 * 9 * px       # norm2+relu2, conv2
            c += 32
    return total


@pytest.mark.parametrize('d,h,w', [(3, 512, 512), (5, 100, 75), (2, 33, 64)])
def test_counts_are_exact_at_any_shape(d, h, w):
    r = get_flops.backbone_flops(dict(type='DenseNet3D', num_slices=d,
                                      fusion=dict(type='NoFusionConv')), (h, w))
    assert r.flops == densenet_nofusion_flops(d, h, w)


def test_a3d_counted_both_ways():
    d, shape = 7, (64, 96)
    r = get_flops.backbone_flops(dict(type='DenseNet3D', num_slices=d,
                                      fusion=dict(type='A3DConv')), shape)
    base = get_flops.backbone_flops(dict(type='DenseNet3D', num_slices=d,
                                         fusion=dict(type='NoFusionConv')), shape)
    # D^2 * Cin per pixel of every fused layer's input: conv1 (Cin = block channels) + conv2 (128)
    h, w = 16, 24
    expected = 0
    for c0, layers in ((64, 6), (128, 12), (256, 24)):
        for i in range(layers):
            expected += d * d * (c0 + 32 * i + 128) * h * w
        h, w = h // 2, w // 2
    assert r.a3d_fusion_macs == expected
    assert r.flops == base.flops + expected
    assert r.a3d_fusion_params == r.params - base.params       # Table 1 convention
    assert r.flops_table1 == base.flops + r.a3d_fusion_params


def run_main(capsys, *args):
    code = run_tool_main(get_flops, list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_cli_fusion_and_config(tmp_path, capsys):
    code, out, err = run_main(capsys, '--fusion', 'A3DConv', '--num-slices', '7',
                              '--shape', '512', '512')
    assert code == 0, err
    assert 'Backbone GFLOPs: 98.08' in out
    assert 'Backbone GFLOPs (Table 1, A3D fusion counted by its parameters): 94.83' in out
    assert 'Params: 5.48 M' in out
    cfg = tmp_path / 'tiny_cfg.py'
    cfg.write_text("model = dict(type='Whatever', backbone=dict(type='DenseNet3D', "
                   "num_slices=3, fusion=dict(type='I3DConv'), pretrained='none.pth'))\n")
    code, out, err = run_main(capsys, str(cfg), '--shape', '512')
    assert code == 0, err
    assert 'Backbone GFLOPs: 78.69' in out


def test_cli_deeplesion_config_without_the_imagenet_file(capsys):
    """A Table-2 config names checkpoints/densenet121.pth, absent here: FLOPs
    need no weights."""
    cfg = ROOT / 'configs/a3d/a3d_densenet121_3slice_deeplesion.py'
    assert not (ROOT / 'checkpoints/densenet121.pth').exists()
    code, out, err = run_main(capsys, str(cfg))
    assert code == 0, err
    assert 'Backbone GFLOPs (Table 1, A3D fusion counted by its parameters): 40.64' in out


def test_cli_user_errors_are_one_line(tmp_path, capsys):
    bad = tmp_path / 'bad.py'
    bad.write_text('model = dict(type="X")\n')
    for args, msg in [(('missing_cfg.py',), 'config file not found'),
                      (('--fusion', 'NoSuchConv'), "unknown fusion operator 'NoSuchConv'"),
                      (('--shape', '1', '2', '3'), '--shape takes H [W]'),
                      ((str(bad),), 'has no model.backbone')]:
        code, out, err = run_main(capsys, *args)
        assert code == 2 and err.startswith('error: ') and msg in err
        assert len(err.strip().splitlines()) == 1


@pytest.mark.slow
def test_cli_script_exit_status():
    """The script itself: a user mistake is a non-zero exit without traceback."""
    res = subprocess.run([sys.executable, str(ROOT / 'tools/analysis/get_flops.py'),
                          '--fusion', 'NoSuchConv'], capture_output=True, text=True, cwd=ROOT)
    assert res.returncode == 2
    assert 'NoSuchConv' in res.stderr and 'Traceback' not in res.stderr


@pytest.mark.parametrize('depth', [18, 50])
def test_resnet3d_counts_its_2d_trunk_on_every_slice(depth):
    """Any backbone: ResNet3D without fusion costs D times torchvision's 2D
    trunk (grey conv1, layers 1-3) counted on one slice."""
    import torch
    import torchvision
    from torch import nn
    d, shape = 3, (100, 75)
    r = get_flops.backbone_flops(dict(type='ResNet3D', depth=depth, num_slices=d,
                                      fusion=dict(type='NoFusionConv')), shape)
    with torch.device('meta'):
        net = getattr(torchvision.models, f'resnet{depth}')()
        net.conv1 = nn.Conv2d(1, 64, 7, 2, 3, bias=False)
        trunk = nn.Sequential(net.conv1, net.bn1, net.relu, net.maxpool,
                              net.layer1, net.layer2, net.layer3)
        r2d = get_flops.count_flops(trunk, torch.empty(1, 1, *shape))
    assert r.flops == d * r2d.flops and r.conv == d * r2d.conv
    assert r.params == r2d.params


def test_cli_any_backbone(capsys):
    code, out, err = run_main(capsys, '--backbone', 'ResNet3D', '--depth', '50',
                              '--num-slices', '7')
    assert code == 0, err
    assert 'Backbone: ResNet3D-50 (fusion A3DConv, 7 slices)' in out
    cfg = ROOT / 'configs/a3d/a3d_resnet50_3slice_deeplesion.py'
    code, out, err = run_main(capsys, str(cfg))
    assert code == 0, err
    assert 'Backbone: ResNet3D-50 (fusion A3DConv, 3 slices)' in out
    for args, msg in [(('--backbone', 'NoSuchNet'), "unknown backbone type 'NoSuchNet'"),
                      (('--backbone', 'ResNet3D', '--depth', '19'), 'depth must be one of'),
                      (('--depth', '50'), 'depth')]:
        code, out, err = run_main(capsys, *args)
        assert code == 2 and msg in err and len(err.strip().splitlines()) == 1
