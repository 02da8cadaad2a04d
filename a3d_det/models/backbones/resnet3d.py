"""ResNet3D: torchvision's ResNet-18/34/50/101 converted to 3D with any
fusion operator (``convert_2d_to_3d``), truncated after layer3 (C2-C4)."""
from __future__ import annotations

import re
import warnings
from collections import OrderedDict

import torch
import torchvision
from torch import Tensor, nn

from a3d_det.models.backbones.backbone3d import Backbone3D
from a3d_det.models.backbones.norm import build_norm_layer
from a3d_det.models.fusion import slice_thickness
from a3d_det.models.fusion.convert import convert_modules, load_2d_state_dict
from a3d_det.registry import MODELS

_ARCHS = {18: 'resnet18', 34: 'resnet34', 50: 'resnet50', 101: 'resnet101'}
_STAGES = ('layer1', 'layer2', 'layer3')
# torchvision keys of the layers the truncated network drops.
_TRUNCATED = re.compile(r'^(layer4|fc)\.')


def _pretrained_help(depth: int) -> str:
    arch = _ARCHS[depth]
    return (f'Put a torchvision {arch} state_dict there (e.g. checkpoints/{arch}.pth); on a '
            'machine with internet make it with: python -c "import torch, torchvision; '
            f"torch.save(torchvision.models.{arch}(weights='IMAGENET1K_V1').state_dict(), "
            f"'checkpoints/{arch}.pth')\"")


def _replace_norms(module: nn.Module, norm_cfg: dict) -> None:
    """Every BatchNorm3d of ``module`` becomes ``build_norm_layer(norm_cfg, C)``
    (torchvision's initial state, weight 1 and bias 0, either way)."""
    for name, child in module.named_children():
        if isinstance(child, nn.BatchNorm3d):
            setattr(module, name, build_norm_layer(norm_cfg, child.num_features))
        else:
            _replace_norms(child, norm_cfg)


@MODELS.register_module()
class ResNet3D(Backbone3D):
    """torchvision ResNet with a 3D context fusion operator, layers 1-3.

    The stem (conv1 7x7 stride 2 - BN - ReLU - max-pool 3x3 stride 2) and the
    shortcut projections (``downsample``) are converted without fusion
    (``NoFusionConv``), as DenseNet3D's conv0 and transitions; every
    convolution of the residual blocks is the fusion operator. Module names
    are torchvision's (``conv1``, ``bn1``, ``layer1.0.conv2``, ...). The depth
    D is kept throughout.

    Args:
        depth: 18, 34, 50 or 101.
        num_slices: D, the number of input slices.
        fusion: config of the fusion operator, e.g. ``dict(type='A3DConv')``.
        pretrained: path of a torchvision ``resnet{depth}`` state_dict file,
            read by ``init_weights()`` (which mmengine's Runner calls before
            training), never at construction, with ``weights_only=True``:
            conv1 from the green input channel, the 2D kernels through the
            operators' ``from_conv2d`` rule, batch norm as is. Never
            downloaded. ``init_cfg=dict(type='Pretrained', checkpoint=path)``
            is the same as ``pretrained=path``.
        in_channels: input channels (1: grey CT).
        norm_cfg: ``dict(type='BN3d')`` (default), ``'SyncBN'`` or ``'GN'``.
        frozen_stages: -1 none; 0 the stem (conv1, bn1); i >= 1 also
            layer1..i (eval mode, no grad).
        norm_eval: keep every batch norm in eval mode during training.
        init_cfg: mmengine initialisation config.

    Attributes:
        out_channels: channels of layer1-3, (64, 128, 256) for ResNet-18/34,
            (256, 512, 1024) for ResNet-50/101.
        strides: their in-plane strides, (4, 8, 16).
        num_slices: D.

    ``forward(x, thickness=None)``: ``x`` ``(B, in_channels, D, H, W)``,
    ``thickness`` ``(B,)`` mm (read by the operators that take it, i.e.
    AlignShift) -> ``(B, C_i, D, H/s_i, W/s_i)`` for the three layers.
    """

    def __init__(self, depth: int = 50, num_slices: int = 3, fusion: dict | None = None,
                 pretrained: str | None = None, in_channels: int = 1,
                 norm_cfg: dict | None = None, frozen_stages: int = -1,
                 norm_eval: bool = False, init_cfg: dict | None = None) -> None:
        if depth not in _ARCHS:
            raise ValueError(f'ResNet3D depth must be one of {sorted(_ARCHS)}, got {depth!r}')
        super().__init__(num_slices, in_channels, frozen_stages, norm_eval,
                         num_stages=len(_STAGES), pretrained=pretrained,
                         init_cfg=init_cfg)
        fusion = dict(type='A3DConv') if fusion is None else dict(fusion)
        norm_cfg = dict(type='BN3d') if norm_cfg is None else dict(norm_cfg)
        self.depth = depth
        self.fusion = fusion

        # torchvision's network and its initialisation (Kaiming normal
        # kernels, BN 1/0), converted; the file, if any, loads in init_weights.
        net = getattr(torchvision.models, _ARCHS[depth])(weights=None)
        no_fusion = dict(type='NoFusionConv')
        stem = convert_modules(nn.Sequential(OrderedDict(
            (n, getattr(net, n)) for n in ('conv1', 'bn1', 'relu', 'maxpool'))),
            no_fusion, num_slices, in_channels)
        for name, module in stem.named_children():
            self.add_module(name, module)
        out_channels = []
        for name in _STAGES:
            layer = getattr(net, name)
            for block in layer:
                if block.downsample is not None:
                    block.downsample = convert_modules(block.downsample, no_fusion,
                                                       num_slices)
            self.add_module(name, convert_modules(layer, fusion, num_slices))
            last = layer[-1]
            out_channels.append((last.bn3 if hasattr(last, 'bn3') else last.bn2).num_features)
        _replace_norms(self, norm_cfg)
        self.out_channels: tuple[int, ...] = tuple(out_channels)
        self.strides: tuple[int, ...] = (4, 8, 16)
        self._freeze_stages()

    @torch.no_grad()
    def load_pretrained(self, path: str) -> None:
        """Convert a torchvision ``resnet{depth}`` state_dict file (see class doc).

        Raises:
            FileNotFoundError: the file is missing (the message says how to make it).
            ValueError: a key the backbone needs is missing or has another shape.
        Unexpected keys (beyond the dropped ``layer4``/``fc``) are reported
        with a warning.
        """
        state = self.read_state_dict(path, _pretrained_help(self.depth))
        conv1 = state.get('conv1.weight')
        if self.in_channels == 1 and conv1 is not None and conv1.dim() == 4 \
                and conv1.shape[1] == 3:
            state['conv1.weight'] = conv1[:, 1:2]   # grey CT: the green channel
        missing, mismatched, unexpected = load_2d_state_dict(self, state)
        self.report_fit(path, f'ResNet3D(depth={self.depth})', missing, mismatched)
        unexpected = [k for k in unexpected if not _TRUNCATED.match(k)]
        if unexpected:
            warnings.warn(f'{path}: {len(unexpected)} unexpected keys not loaded into '
                          f'ResNet3D: {unexpected[:10]}')

    # -- freezing --------------------------------------------------------------
    def _stage_modules(self, stage: int) -> list[nn.Module]:
        return [self.conv1, self.bn1] if stage == 0 else [getattr(self, _STAGES[stage - 1])]

    # -- forward ---------------------------------------------------------------
    def forward(self, x: Tensor, thickness: Tensor | None = None) -> tuple[Tensor, ...]:
        """``(B, in_channels, D, H, W)`` -> three ``(B, C_i, D, H/s_i, W/s_i)``."""
        self.check_input(x)
        with slice_thickness(thickness):
            x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
            outs = []
            for name in _STAGES:
                x = getattr(self, name)(x)
                outs.append(x)
        return tuple(outs)
