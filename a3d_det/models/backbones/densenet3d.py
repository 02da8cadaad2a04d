"""DenseNet3D: the truncated DenseNet-121 3D backbone of the paper (Sec. 2.3,
Fig. 2) with any 3D context fusion operator in its dense layers."""
from __future__ import annotations

import re
import warnings
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from a3d_det.models.backbones.backbone3d import Backbone3D
from a3d_det.models.backbones.dense_block import _DenseBlock, _Transition
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


@MODELS.register_module()
class DenseNet3D(Backbone3D):
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
        super().__init__(num_slices, in_channels, frozen_stages, norm_eval,
                         num_stages=len(block_config), pretrained=pretrained,
                         init_cfg=init_cfg)
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
        self.fusion = fusion

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

    @torch.no_grad()
    def load_pretrained(self, path: str) -> None:
        """Convert a torchvision ``densenet121`` state_dict file (see class doc).

        Raises:
            FileNotFoundError: the file is missing (the message says how to make it).
            ValueError: a key the backbone needs is missing or has another shape.
        Unexpected keys (beyond the dropped ``denseblock4``/``transition3``/
        ``norm5``/``classifier``) are reported with a warning.
        """
        source: dict[str, Tensor] = {}
        for key, value in self.read_state_dict(path, PRETRAINED_HELP).items():
            key = _OLD_STYLE.sub(r'\1\2', key)
            if not key.startswith('features.'):
                continue                     # classifier
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
        self.report_fit(path, 'DenseNet3D', missing, mismatched)
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

    # -- forward ---------------------------------------------------------------
    def forward(self, x: Tensor, thickness: Tensor | None = None) -> tuple[Tensor, ...]:
        """``(B, in_channels, D, H, W)`` -> three ``(B, C_i, D, H/s_i, W/s_i)``."""
        self.check_input(x)
        x = self.pool0(self.relu0(self.norm0(self.conv0(x))))
        outs = []
        for i in range(len(self.out_channels)):
            if i > 0:
                x = getattr(self, f'transition{i}')(x)
            x = getattr(self, f'denseblock{i + 1}')(x, thickness)
            outs.append(x)
        return tuple(outs)
