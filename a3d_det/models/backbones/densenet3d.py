"""DenseNet3D: the truncated DenseNet-121 3D backbone of the paper (Sec. 2.3,
Fig. 2) with any 3D context fusion operator in its dense layers."""
from __future__ import annotations

import contextlib
import os
import re
import warnings
from typing import ContextManager
from collections.abc import Iterator, Sequence

import torch
import torch.utils.checkpoint as cp
from mmengine.model import BaseModule
from torch import Tensor, nn

from a3d_det.models.backbones.norm import build_norm_layer
from a3d_det.models.fusion import BaseFusionConv, NoFusionConv
from a3d_det.registry import MODELS

# torchvision's densenet121 keys of the layers the truncated network drops.
_TRUNCATED = re.compile(r'^(denseblock4|transition3|norm5)\.')
# Old-style keys ('norm.1', 'conv.2') of the model-zoo checkpoint files.
_OLD_STYLE = re.compile(
    r'^(.*denselayer\d+\.(?:norm|relu|conv))\.((?:[12])\.(?:weight|bias|running_mean|running_var|num_batches_tracked))$')

PRETRAINED_HELP = (
    'Put a torchvision densenet121 state_dict there (e.g. checkpoints/densenet121.pth); '
    'on a machine with internet make it with: python -c "import torch, torchvision; '
    "torch.save(torchvision.models.densenet121(weights='IMAGENET1K_V1').state_dict(), "
    "'checkpoints/densenet121.pth')\"")


@contextlib.contextmanager
def _keep_norm_statistics(norm: nn.Module) -> Iterator[None]:
    """Restore ``norm``'s running statistics (and ``num_batches_tracked``) on
    exit: the recompute of a checkpointed batch norm in the backward pass must
    not update them a second time."""
    saved = {name: buf.clone() for name, buf in norm.named_buffers(recurse=False)
             if buf is not None}
    try:
        yield
    finally:
        with torch.no_grad():
            for name, value in saved.items():
                getattr(norm, name).copy_(value)


def _call(op: nn.Module, x: Tensor, thickness: Tensor | None) -> Tensor:
    """Run a fusion operator, passing ``thickness`` only to those that take it."""
    if getattr(op, 'takes_thickness', False):
        return op(x, thickness)
    return op(x)


class _DenseLayer(nn.Module):
    """BN-ReLU-conv1 (1x1, bottleneck ``bn_size * growth``) then BN-ReLU-conv2
    (3x3, ``growth``), both convolutions the fusion operator."""

    def __init__(self, in_channels: int, growth_rate: int, bn_size: int,
                 fusion: dict, num_slices: int, norm_cfg: dict,
                 memory_efficient: bool) -> None:
        super().__init__()
        mid = bn_size * growth_rate
        self.norm1 = build_norm_layer(norm_cfg, in_channels)
        self.relu1 = nn.ReLU(inplace=True)
        self.conv1 = MODELS.build(dict(fusion, in_channels=in_channels, out_channels=mid,
                                       kernel_size=1, num_slices=num_slices))
        self.norm2 = build_norm_layer(norm_cfg, mid)
        self.relu2 = nn.ReLU(inplace=True)
        self.conv2 = MODELS.build(dict(fusion, in_channels=mid, out_channels=growth_rate,
                                       kernel_size=3, padding=1, num_slices=num_slices))
        self.memory_efficient = memory_efficient

    def _checkpoint_contexts(self) -> tuple[ContextManager, ContextManager]:
        return contextlib.nullcontext(), _keep_norm_statistics(self.norm1)

    def bottleneck(self, *features: Tensor, thickness: Tensor | None = None) -> Tensor:
        x = torch.cat(features, 1)
        return _call(self.conv1, self.relu1(self.norm1(x)), thickness)

    def forward(self, features: list[Tensor], thickness: Tensor | None) -> Tensor:
        """``features``: the block input and every earlier layer's output, each
        ``(B, C_i, D, H, W)``; returns ``(B, growth_rate, D, H, W)``."""
        if self.memory_efficient and self.training \
                and any(f.requires_grad for f in features):
            # Activation checkpointing of the concatenation + bottleneck: its
            # (large) output is recomputed in backward instead of stored. The
            # recompute normalises with the same batch statistics but leaves
            # the running statistics as the forward pass set them (one update
            # per step).
            x = cp.checkpoint(self.bottleneck, *features, thickness=thickness,
                              use_reentrant=False, context_fn=self._checkpoint_contexts)
        else:
            x = self.bottleneck(*features, thickness=thickness)
        return _call(self.conv2, self.relu2(self.norm2(x)), thickness)


class _DenseBlock(nn.ModuleDict):
    """``num_layers`` dense layers; the output concatenates the input and every
    layer's output: ``(B, C + num_layers * growth, D, H, W)``."""

    def __init__(self, num_layers: int, in_channels: int, **layer_kwargs) -> None:
        super().__init__()
        growth = layer_kwargs['growth_rate']
        for i in range(num_layers):
            self[f'denselayer{i + 1}'] = _DenseLayer(in_channels + i * growth, **layer_kwargs)

    def forward(self, x: Tensor, thickness: Tensor | None) -> Tensor:
        features = [x]
        for layer in self.values():
            features.append(layer(features, thickness))
        return torch.cat(features, 1)


class _Transition(nn.Sequential):
    """BN-ReLU-1x1 conv (no fusion) - average pool (1, 2, 2)."""

    def __init__(self, in_channels: int, out_channels: int, norm_cfg: dict,
                 num_slices: int) -> None:
        super().__init__()
        self.norm = build_norm_layer(norm_cfg, in_channels)
        self.relu = nn.ReLU(inplace=True)
        self.conv = NoFusionConv(in_channels, out_channels, 1, num_slices=num_slices)
        self.pool = nn.AvgPool3d(kernel_size=(1, 2, 2), stride=(1, 2, 2))


@MODELS.register_module()
class DenseNet3D(BaseModule):
    """Truncated 3D DenseNet-121 (paper Sec. 2.3, Fig. 2).

    conv0 7x7 stride 2 - BN - ReLU - max-pool 3x3 stride 2 (in-plane), then
    three dense blocks (6/12/24 layers, growth 32, bottleneck 4x) with
    transitions (BN-ReLU-1x1 conv, average pool (1, 2, 2)) between them. The
    dense layers' two convolutions are the fusion operator; conv0 and the
    transitions do not fuse (``NoFusionConv``). The depth D is kept throughout.
    Module names follow torchvision's ``densenet121.features``.

    Args:
        num_slices: D, the number of input slices.
        fusion: config of the fusion operator, e.g. ``dict(type='A3DConv')``
            (any registered operator; extra keys are its options).
        pretrained: path of a torchvision ``densenet121`` state_dict file,
            read by ``init_weights()`` (which mmengine's Runner calls before
            training), never at construction: conv0 from the green input
            channel, the 2D kernels through the operators' ``from_conv2d``
            rule (``load_conv2d_weight``), batch norm as is. Never downloaded.
            ``init_cfg=dict(type='Pretrained', checkpoint=path)`` (mmdet's
            pattern) is the same as ``pretrained=path``.
        memory_efficient: checkpoint the concatenation + bottleneck of every
            dense layer (less memory, one more bottleneck forward in backward;
            batch-norm running statistics are still updated once per step).
        norm_cfg: ``dict(type='BN3d')`` (default), ``'SyncBN'`` or ``'GN'``.
        frozen_stages: -1 none; 0 the stem (conv0, norm0); i >= 1 also dense
            blocks 1..i and the transitions before them (eval mode, no grad).
        norm_eval: keep every norm layer in eval mode during training.
        in_channels, growth_rate, block_config, num_init_features, bn_size:
            DenseNet-121's 1 (grey CT), 32, (6, 12, 24), 64, 4 by default.
        init_cfg: mmengine initialisation config.

    Building reads no file: tests, evaluation (whose checkpoint holds every
    weight) and inference never need the ImageNet file.

    Attributes:
        out_channels: channels of the three outputs, (256, 512, 1024).
        strides: their in-plane strides, (4, 8, 16).

    ``forward(x, thickness=None)``: ``x`` ``(B, in_channels, D, H, W)``,
    ``thickness`` ``(B,)`` mm (passed only to operators that take it, i.e.
    AlignShift) -> the three dense-block outputs ``(B, 256, D, H/4, W/4)``,
    ``(B, 512, D, H/8, W/8)``, ``(B, 1024, D, H/16, W/16)`` (before the
    transitions' batch norm, as in the official code).
    """

    def __init__(self, num_slices: int = 3, fusion: dict | None = None,
                 pretrained: str | None = None, memory_efficient: bool = False,
                 norm_cfg: dict | None = None, frozen_stages: int = -1,
                 norm_eval: bool = False, in_channels: int = 1, growth_rate: int = 32,
                 block_config: Sequence[int] = (6, 12, 24), num_init_features: int = 64,
                 bn_size: int = 4, init_cfg: dict | None = None) -> None:
        if isinstance(init_cfg, dict) and init_cfg.get('type') == 'Pretrained':
            # mmdet's pattern; the file is a 2D torchvision state_dict, so it
            # goes through the conversion of ``load_pretrained``, not
            # mmengine's plain ``load_checkpoint``.
            if pretrained is not None:
                raise ValueError('give either pretrained or '
                                 "init_cfg=dict(type='Pretrained'), not both")
            pretrained, init_cfg = init_cfg.get('checkpoint'), None
        super().__init__(init_cfg=init_cfg)
        fusion = dict(type='A3DConv') if fusion is None else dict(fusion)
        norm_cfg = dict(type='BN3d') if norm_cfg is None else dict(norm_cfg)
        if 'type' not in fusion:
            raise ValueError(f'fusion must be a dict with a "type", got {fusion!r}')
        op_cls = MODELS.get(fusion['type'])
        if op_cls is None or not (isinstance(op_cls, type)
                                  and issubclass(op_cls, BaseFusionConv)):
            raise ValueError(f'fusion type {fusion["type"]!r} is not a registered fusion '
                             'operator (NoFusionConv, I3DConv, P3DConv, ACSConv, '
                             'TSMConv, AlignShiftConv, A3DConv)')
        if not -1 <= frozen_stages <= len(block_config):
            raise ValueError(f'frozen_stages must be in [-1, {len(block_config)}], '
                             f'got {frozen_stages}')
        self.num_slices = num_slices
        self.in_channels = in_channels
        self.fusion = fusion
        self.frozen_stages = frozen_stages
        self.norm_eval = norm_eval
        self.pretrained = pretrained

        # Stem: 2D layers applied slice by slice (stride 4 in-plane).
        self.conv0 = NoFusionConv(in_channels, num_init_features, 7, stride=2, padding=3,
                                  num_slices=num_slices)
        self.norm0 = build_norm_layer(norm_cfg, num_init_features)
        self.relu0 = nn.ReLU(inplace=True)
        self.pool0 = nn.MaxPool3d(kernel_size=(1, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1))

        channels, stride = num_init_features, 4
        out_channels, strides = [], []
        layer_kwargs = dict(growth_rate=growth_rate, bn_size=bn_size, fusion=fusion,
                            num_slices=num_slices, norm_cfg=norm_cfg,
                            memory_efficient=memory_efficient)
        for i, num_layers in enumerate(block_config):
            if i > 0:
                self.add_module(f'transition{i}', _Transition(
                    channels, channels // 2, norm_cfg, num_slices))
                channels, stride = channels // 2, stride * 2
            self.add_module(f'denseblock{i + 1}', _DenseBlock(num_layers, channels,
                                                              **layer_kwargs))
            channels += num_layers * growth_rate
            out_channels.append(channels)
            strides.append(stride)
        self.out_channels: tuple[int, ...] = tuple(out_channels)
        self.strides: tuple[int, ...] = tuple(strides)

        self._init_random()
        self._freeze_stages()

    # -- initialisation --------------------------------------------------------
    @torch.no_grad()
    def _init_random(self) -> None:
        """torchvision's DenseNet init: Kaiming normal kernels, BN 1/0. The
        operators' own fusion parameters (A3D's P, P3D's depth kernel) keep
        their identity initialisation."""
        for m in self.modules():
            if isinstance(m, BaseFusionConv):
                nn.init.kaiming_normal_(m.weight)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, (nn.BatchNorm3d, nn.SyncBatchNorm, nn.GroupNorm)) \
                    and m.weight is not None:
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def init_weights(self) -> None:
        """Load ``pretrained`` (if set) into the randomly initialised network.

        Called by mmengine's Runner before training (not for testing, where
        the checkpoint holds every weight).

        Raises:
            FileNotFoundError: ``pretrained`` does not exist (naming the path).
        """
        first_call = not self._is_init
        super().init_weights()          # warns on a second call, as mmengine does
        if first_call and self.pretrained is not None:
            self.load_pretrained(self.pretrained)

    @torch.no_grad()
    def load_pretrained(self, path: str) -> None:
        """Convert a torchvision ``densenet121`` state_dict file (see class doc).

        Raises:
            FileNotFoundError: the file is missing (the message says how to make it).
            ValueError: a key the backbone needs is missing or has another shape.
        Unexpected keys (beyond the dropped ``denseblock4``/``transition3``/
        ``norm5``/``classifier``) are reported with a warning.
        """
        if not os.path.isfile(path):
            raise FileNotFoundError(f'DenseNet3D pretrained weights not found: {path}. '
                                    + PRETRAINED_HELP)
        state = torch.load(path, map_location='cpu', weights_only=True)
        if isinstance(state, dict) and isinstance(state.get('state_dict'), dict):
            state = state['state_dict']
        if not isinstance(state, dict):
            raise ValueError(f'{path}: expected a state_dict (a dict of tensors), '
                             f'got {type(state).__name__}')
        source: dict[str, Tensor] = {}
        ignored = []
        for key, value in state.items():
            key = _OLD_STYLE.sub(r'\1\2', key)
            if key.startswith('module.'):
                key = key[len('module.'):]
            if not key.startswith('features.'):
                ignored.append(key)          # classifier
                continue
            source[key[len('features.'):]] = value

        used, missing, mismatched = set(), [], []

        def take(key: str, shape: tuple[int, ...]) -> Tensor | None:
            if key not in source:
                if not key.endswith('num_batches_tracked'):   # absent in old files
                    missing.append(key)
                return None
            used.add(key)
            value = source[key]
            if tuple(value.shape) != tuple(shape):
                mismatched.append(f'{key}: file {tuple(value.shape)} vs model {tuple(shape)}')
                return None
            return value

        conv0 = source.get('conv0.weight')
        if self.in_channels == 1 and conv0 is not None and conv0.dim() == 4 \
                and conv0.shape[1] == 3:
            # grey CT input: the kernel of the green channel (official code)
            source['conv0.weight'] = conv0[:, 1:2]
        for name, module in self.named_modules():
            if isinstance(module, BaseFusionConv):
                shape2d = (module.out_channels, module.in_channels,
                           module.kernel_size, module.kernel_size)
                weight = take(f'{name}.weight', shape2d)
                bias = take(f'{name}.bias', (module.out_channels,)) \
                    if module.bias is not None else None
                if weight is not None:
                    module.load_conv2d_weight(weight, bias)
            elif name:
                tensors = dict(module.named_parameters(recurse=False))
                tensors.update(module.named_buffers(recurse=False))
                for tname, tensor in tensors.items():
                    if tensor is None:
                        continue
                    value = take(f'{name}.{tname}', tuple(tensor.shape))
                    if value is not None:
                        tensor.copy_(value)
        if missing or mismatched:
            raise ValueError(f'{path} does not fit DenseNet3D: '
                             + '; '.join([f'missing {k}' for k in missing[:10]]
                                         + mismatched[:10])
                             + (' ...' if len(missing) + len(mismatched) > 20 else ''))
        unexpected = [k for k in source if k not in used and not _TRUNCATED.match(k)]
        if unexpected:
            warnings.warn(f'{path}: {len(unexpected)} unexpected keys not loaded into '
                          f'DenseNet3D: {unexpected[:10]}')

    # -- freezing --------------------------------------------------------------
    def _stage_modules(self, stage: int) -> list[nn.Module]:
        if stage == 0:
            return [self.conv0, self.norm0]
        mods = [getattr(self, f'denseblock{stage}')]
        if stage > 1:
            mods.insert(0, getattr(self, f'transition{stage - 1}'))
        return mods

    def _freeze_stages(self) -> None:
        for stage in range(self.frozen_stages + 1):
            for m in self._stage_modules(stage):
                m.eval()
                for p in m.parameters():
                    p.requires_grad = False

    def train(self, mode: bool = True) -> DenseNet3D:
        super().train(mode)
        self._freeze_stages()
        if mode and self.norm_eval:
            for m in self.modules():
                if isinstance(m, nn.modules.batchnorm._BatchNorm):
                    m.eval()
        return self

    # -- forward ---------------------------------------------------------------
    def forward(self, x: Tensor, thickness: Tensor | None = None) -> tuple[Tensor, ...]:
        """``(B, in_channels, D, H, W)`` -> three ``(B, C_i, D, H/s_i, W/s_i)``."""
        if x.dim() != 5 or x.shape[1] != self.in_channels or x.shape[2] != self.num_slices:
            raise ValueError(f'DenseNet3D expects (B, {self.in_channels}, '
                             f'{self.num_slices}, H, W) (num_slices={self.num_slices}), '
                             f'got {tuple(x.shape)}')
        x = self.pool0(self.relu0(self.norm0(self.conv0(x))))
        outs = []
        for i in range(len(self.out_channels)):
            if i > 0:
                x = getattr(self, f'transition{i}')(x)
            x = getattr(self, f'denseblock{i + 1}')(x, thickness)
            outs.append(x)
        return tuple(outs)
