"""What every 3D backbone shares: the ImageNet file loaded in ``init_weights``
(never at construction), frozen stages, ``norm_eval`` and the input check."""
from __future__ import annotations

import os
from abc import abstractmethod

import torch
from mmengine.model import BaseModule
from torch import Tensor, nn


class Backbone3D(BaseModule):
    """Base of ``DenseNet3D`` and ``ResNet3D``.

    Subclasses set ``num_slices``, ``in_channels``, ``frozen_stages``,
    ``norm_eval`` and ``pretrained`` (through ``__init__`` here), build their
    layers, then call ``_freeze_stages()``; they implement
    ``_stage_modules(stage)`` (stage 0 is the stem) and
    ``load_pretrained(path)``.

    Args:
        pretrained: path of a 2D torchvision state_dict file, read by
            ``init_weights()`` (which mmengine's Runner calls before
            training), never at construction.
        init_cfg: mmengine initialisation config;
            ``dict(type='Pretrained', checkpoint=path)`` (mmdet's pattern) is
            the same as ``pretrained=path``: the 2D file goes through the
            backbone's own conversion (``load_pretrained``), not mmengine's
            plain ``load_checkpoint``.
        num_stages: the number of stages after the stem (bounds
            ``frozen_stages``).
    """

    def __init__(self, num_slices: int, in_channels: int, frozen_stages: int,
                 norm_eval: bool, num_stages: int, pretrained: str | None = None,
                 init_cfg: dict | None = None) -> None:
        if isinstance(init_cfg, dict) and init_cfg.get('type') == 'Pretrained':
            if pretrained is not None:
                raise ValueError('give either pretrained or '
                                 "init_cfg=dict(type='Pretrained'), not both")
            pretrained, init_cfg = init_cfg.get('checkpoint'), None
        super().__init__(init_cfg=init_cfg)
        if not -1 <= frozen_stages <= num_stages:
            raise ValueError(f'frozen_stages must be in [-1, {num_stages}], '
                             f'got {frozen_stages}')
        self.num_slices = num_slices
        self.in_channels = in_channels
        self.frozen_stages = frozen_stages
        self.norm_eval = norm_eval
        self.pretrained = pretrained

    # -- initialisation --------------------------------------------------------
    def init_weights(self) -> None:
        """Load ``pretrained`` (if set) into the network.

        Called by mmengine's Runner before training (not for testing, where
        the checkpoint holds every weight).

        Raises:
            FileNotFoundError: ``pretrained`` does not exist (naming the path).
        """
        first_call = not self._is_init
        super().init_weights()          # warns on a second call, as mmengine does
        if first_call and self.pretrained is not None:
            self.load_pretrained(self.pretrained)

    @abstractmethod
    def load_pretrained(self, path: str) -> None:
        """Convert a 2D torchvision state_dict file into this network."""

    def read_state_dict(self, path: str, help_text: str) -> dict[str, Tensor]:
        """The tensors of a state_dict file, loaded with ``weights_only=True``
        (a checkpoint's ``state_dict`` entry is unwrapped, DDP's ``module.``
        prefix dropped).

        Raises:
            FileNotFoundError: the file is missing (``help_text`` says how to make it).
            ValueError: the file holds no dict.
        """
        name = type(self).__name__
        if not os.path.isfile(path):
            raise FileNotFoundError(f'{name} pretrained weights not found: {path}. '
                                    + help_text)
        state = torch.load(path, map_location='cpu', weights_only=True)
        if isinstance(state, dict) and isinstance(state.get('state_dict'), dict):
            state = state['state_dict']
        if not isinstance(state, dict):
            raise ValueError(f'{path}: expected a state_dict (a dict of tensors), '
                             f'got {type(state).__name__}')
        return {k[len('module.'):] if k.startswith('module.') else k: v
                for k, v in state.items()}

    @staticmethod
    def report_fit(path: str, name: str, missing: list[str], mismatched: list[str]) -> None:
        """Raise ``ValueError`` naming the keys a file lacks or has in another shape."""
        if missing or mismatched:
            raise ValueError(f'{path} does not fit {name}: '
                             + '; '.join([f'missing {k}' for k in missing[:10]]
                                         + mismatched[:10])
                             + (' ...' if len(missing) + len(mismatched) > 20 else ''))

    # -- freezing --------------------------------------------------------------
    @abstractmethod
    def _stage_modules(self, stage: int) -> list[nn.Module]:
        """The modules of ``stage`` (0: the stem) that freezing acts on."""

    def _freeze_stages(self) -> None:
        for stage in range(self.frozen_stages + 1):
            for m in self._stage_modules(stage):
                m.eval()
                for p in m.parameters():
                    p.requires_grad = False

    def train(self, mode: bool = True) -> Backbone3D:
        super().train(mode)
        self._freeze_stages()
        if mode and self.norm_eval:
            for m in self.modules():
                if isinstance(m, nn.modules.batchnorm._BatchNorm):
                    m.eval()
        return self

    # -- forward ---------------------------------------------------------------
    def check_input(self, x: Tensor) -> None:
        """Raise ``ValueError`` unless ``x`` is ``(B, in_channels, num_slices, H, W)``."""
        if x.dim() != 5 or x.shape[1] != self.in_channels or x.shape[2] != self.num_slices:
            raise ValueError(f'{type(self).__name__} expects (B, {self.in_channels}, '
                             f'{self.num_slices}, H, W) (num_slices={self.num_slices}), '
                             f'got {tuple(x.shape)}')
