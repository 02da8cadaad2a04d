"""FLOPs and parameters of the 3D backbone, in the convention of Table 1.

    python tools/analysis/get_flops.py --fusion A3DConv --num-slices 7 --shape 512 512
    python tools/analysis/get_flops.py --backbone ResNet3D --depth 50 --num-slices 7
    python tools/analysis/get_flops.py configs/a3d/a3d_densenet121_7slice_deeplesion.py

Any registered backbone is counted (from a config's ``model.backbone``, or
``--backbone TYPE`` with its defaults).

Table 1's convention (the backbone only, batch 1): convolution
multiply-accumulates, plus 2 per element for batch norm, 1 per element for
ReLU, 1 per input element for pooling, biases not counted. The model is built
on the ``meta`` device and run once with forward hooks, so nothing is computed
and any input shape is counted exactly (floor division of strided layers
included).

A3D's slice fusion (Algorithm 1, line 2) costs D multiply-adds per element of
each fused layer's input, i.e. D^2 * Cin per pixel: ``Backbone GFLOPs``
counts it so. Table 1's A3D figure (and the official code's ``flops()``)
counts only the fusion's parameters, D^2 * Cin per layer; that figure is
printed too for A3D.
"""
from __future__ import annotations

import argparse
import copy
import math
from dataclasses import dataclass, field
from typing import Dict, Optional, Sequence

import torch
from torch import nn

from a3d_det.models.fusion import A3DConv, BaseFusionConv, I3DConv, P3DConv
from a3d_det.registry import MODELS
from a3d_det.utils.cli import run_cli
from a3d_det.utils.errors import UserInputError
from a3d_det.utils.runner_config import load_config

NORMS = (nn.modules.batchnorm._BatchNorm, nn.GroupNorm)
POOLS = (nn.MaxPool3d, nn.AvgPool3d, nn.MaxPool2d, nn.AvgPool2d)


@dataclass
class FlopsReport:
    """Counted operations of one forward pass (multiply-accumulates etc.)."""
    conv: int = 0
    norm: int = 0
    relu: int = 0
    pool: int = 0
    a3d_fusion_macs: int = 0      # D^2 * Cin per pixel of every A3D layer
    a3d_fusion_params: int = 0    # D^2 * Cin per A3D layer (Table 1)
    params: int = 0
    per_type: Dict[str, int] = field(default_factory=dict)

    @property
    def flops(self) -> int:
        """The honest count: A3D's fusion as multiply-adds."""
        return self.conv + self.norm + self.relu + self.pool + self.a3d_fusion_macs

    @property
    def flops_table1(self) -> int:
        """Table 1's count: A3D's fusion by its parameters only."""
        return self.conv + self.norm + self.relu + self.pool + self.a3d_fusion_params


def _fusion_conv_macs(op: BaseFusionConv, out: torch.Tensor) -> int:
    """Multiply-accumulates of a fusion operator's convolutions (no bias)."""
    k, cin = op.kernel_size, op.in_channels
    if isinstance(op, I3DConv):
        macs = out.numel() * cin * k ** 3
    else:   # NoFusion, ACS (the three views split Cout), TSM, AlignShift, A3D, P3D
        macs = out.numel() * cin * k * k
    if isinstance(op, P3DConv):   # the Kd x 1 x 1 depth convolution, Cout -> Cout
        macs += out.numel() * op.out_channels * op.depth_kernel_size
    return macs


def count_flops(model: nn.Module, *inputs) -> FlopsReport:
    """Run ``model(*inputs)`` once with counting hooks (use ``meta`` tensors).

    Counted: fusion operators and plain ``nn.Conv2d/3d`` (MACs), batch/group
    norm (2 per output element), ReLU (1 per element), max/average pooling
    (1 per input element). Other modules (concatenation, shifts) count 0.
    """
    report = FlopsReport(params=sum(p.numel() for p in model.parameters()))

    def hook(module: nn.Module, args, out) -> None:
        x = args[0]
        name = type(module).__name__
        if isinstance(module, BaseFusionConv):
            n = _fusion_conv_macs(module, out)
            report.conv += n
            if isinstance(module, A3DConv):
                d = x.shape[2]
                report.a3d_fusion_macs += x.numel() * d          # D^2 Cin per pixel
                report.a3d_fusion_params += module.fusion_weight.numel()
        elif isinstance(module, (nn.Conv2d, nn.Conv3d)):
            n = out.numel() * module.in_channels // module.groups \
                * math.prod(module.kernel_size)
            report.conv += n
        elif isinstance(module, NORMS):
            n = 2 * out.numel()
            report.norm += n
        elif isinstance(module, nn.ReLU):
            n = out.numel()
            report.relu += n
        elif isinstance(module, POOLS):
            n = x.numel()
            report.pool += n
        else:
            return
        report.per_type[name] = report.per_type.get(name, 0) + n

    handles = [m.register_forward_hook(hook) for m in model.modules()]
    try:
        with torch.no_grad():
            model(*inputs)
    finally:
        for h in handles:
            h.remove()
    return report


def backbone_flops(backbone_cfg: dict, shape: Sequence[int] = (512, 512),
                   thickness: float = 2.0) -> FlopsReport:
    """Count the backbone built from ``backbone_cfg`` on a ``(1, C, D, H, W)``
    input, ``D = num_slices``, on the meta device (building reads no weight
    file; ``pretrained`` is read only by ``init_weights``)."""
    cfg = copy.deepcopy(dict(backbone_cfg))
    with torch.device('meta'):
        model = MODELS.build(cfg).eval()
        d = getattr(model, 'num_slices', cfg.get('num_slices', 3))
        c = getattr(model, 'in_channels', 1)
        x = torch.empty(1, c, d, *shape)
        t = torch.full((1,), float(thickness))
    return count_flops(model, x, t)


def _parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description='Backbone FLOPs and parameters (Table 1).')
    p.add_argument('config', nargs='?', help='config file; its model.backbone is counted')
    p.add_argument('--backbone', default='DenseNet3D',
                   help='registered backbone when no config is given (default DenseNet3D)')
    p.add_argument('--depth', type=int, default=None,
                   help='the backbone\'s depth argument (ResNet3D: 18, 34, 50, 101)')
    p.add_argument('--fusion', default='A3DConv',
                   help='fusion operator when no config is given (default A3DConv)')
    p.add_argument('--num-slices', type=int, default=None,
                   help='number of slices D (default: the config\'s, or 3)')
    p.add_argument('--shape', type=int, nargs='+', default=[512, 512],
                   help='input H [W] (default 512 512)')
    return p.parse_args(argv)


def _backbone_from_config(path: str) -> dict:
    cfg = load_config(path)
    model = cfg.get('model')
    if not isinstance(model, dict) or not isinstance(model.get('backbone'), dict):
        raise ValueError(f'{path} has no model.backbone')
    return model['backbone'].to_dict() if hasattr(model['backbone'], 'to_dict') \
        else dict(model['backbone'])


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = _parse_args(argv)
    try:
        if len(args.shape) not in (1, 2) or min(args.shape) <= 0:
            raise ValueError(f'--shape takes H [W], positive, got {args.shape}')
        shape = tuple(args.shape) * (3 - len(args.shape))
        if args.config:
            backbone = _backbone_from_config(args.config)
        else:
            backbone = dict(type=args.backbone, fusion=dict(type=args.fusion))
        if args.depth is not None:
            backbone['depth'] = args.depth
        if args.num_slices is not None:
            if args.num_slices <= 0:
                raise ValueError(f'--num-slices must be positive, got {args.num_slices}')
            backbone['num_slices'] = args.num_slices
        fusion = backbone.get('fusion', {}).get('type', '?') \
            if isinstance(backbone.get('fusion'), dict) else '?'
        if MODELS.get(backbone.get('type', '')) is None:
            raise ValueError(f'unknown backbone type {backbone.get("type")!r}')
        if fusion != '?' and MODELS.get(fusion) is None:
            raise ValueError(f'unknown fusion operator {fusion!r}')
        report = backbone_flops(backbone, shape)
    except (ValueError, KeyError, TypeError) as e:
        raise UserInputError(str(e)) from None
    d = backbone.get('num_slices', 3)
    depth = f'-{backbone["depth"]}' if 'depth' in backbone else ''
    print(f'Backbone: {backbone["type"]}{depth} (fusion {fusion}, {d} slices), '
          f'input 1x1x{d}x{shape[0]}x{shape[1]}')
    print(f'Backbone GFLOPs: {report.flops / 1e9:.2f}')
    if report.a3d_fusion_macs:
        print(f'Backbone GFLOPs (Table 1, A3D fusion counted by its parameters): '
              f'{report.flops_table1 / 1e9:.2f}')
        print(f'  A3D slice fusion: {report.a3d_fusion_macs / 1e9:.2f} GFLOPs '
              f'(D^2*Cin multiply-adds per pixel); {report.a3d_fusion_params} parameters')
    print(f'Params: {report.params / 1e6:.2f} M ({report.params})')
    return 0


if __name__ == '__main__':
    run_cli(main)
