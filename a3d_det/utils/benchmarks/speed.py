"""DenseNet3D against torchvision's 2D DenseNet-121, and A3D's cost in the whole detector.

One process; every case is timed in the same interleaved rounds (median time,
median over rounds of the per-round ratio):

* backbone (``--size``, default 512, batch 1, random weights): DenseNet3D with
  no fusion and with A3D against torchvision's ``densenet121().features`` up to
  ``denseblock3`` (conv0 ... denseblock3, the part DenseNet3D keeps) on the
  same D slices as a 2D batch ``(D, 3, H, W)`` (torchvision's 3-channel conv0,
  the slice in every channel); inference (``torch.no_grad``, eval mode) and
  forward + backward (training mode, batch-norm batch statistics; backward
  from the sum of the denseblock3 output, torchvision's only output);
* detector (``--detector-size``, default 256, batch 1): ``model.train_step``
  (forward, losses, backward, clipping, SGD step with lr 0 so that every round
  times the same weights) and ``model.test_step`` of the no-fusion and A3D
  DeepLesion leaf configs; the A3D model holds the no-fusion model's weights
  and ``P = I`` (``init_noise=0``), so that both compute the same values and
  post-process the same boxes: only the operator's cost differs.

::

    python tools/analysis/benchmark.py --task speed --threads 2
    python tools/analysis/benchmark.py --task speed --slices 3 --parts backbone
    python tools/analysis/benchmark.py --task speed --device cuda --amp   # + the 14 configs

On CUDA (``--device cuda``, default sizes 512 for both parts) ``--amp`` runs
the cases under fp16 autocast, and the task then times the training
iteration of all 14 Table-2 configs at 512 x 512 (``--task train``: seconds
per iteration, peak allocated memory), unless ``--no-configs``.
"""
from __future__ import annotations

import argparse
import contextlib
from collections.abc import Callable
from typing import Any

import torch

from a3d_det.utils.errors import UserInputError
from a3d_det.utils.timing import (Timings, device_description, median_ratio, parse_device,
                                  time_interleaved)

PARTS = ('backbone', 'detector')
FUSIONS = ('NoFusionConv', 'A3DConv')
TV = 'torchvision'


def torchvision_features(device: torch.device) -> torch.nn.Module:
    """torchvision's ``densenet121().features`` from conv0 to denseblock3."""
    import torchvision
    features = torchvision.models.densenet121().features
    names = [n for n, _ in features.named_children()]
    return features[:names.index('denseblock3') + 1].to(device)


def _autocast(device: torch.device, amp: bool) -> contextlib.AbstractContextManager:
    if not amp:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=torch.float16 if device.type == 'cuda'
                          else torch.bfloat16)


def backbone_call(module: torch.nn.Module, x: torch.Tensor, train: bool,
                  amp: bool = False) -> Callable[[], None]:
    """Inference (``train=False``) or forward + backward of ``module`` on ``x``."""
    def run() -> None:
        module.train(train)
        with _autocast(x.device, amp):
            if not train:
                with torch.no_grad():
                    module(x)
                return
            module.zero_grad(set_to_none=True)
            out = module(x)
            # from the last dense block's output, torchvision's only output:
            # both networks run the same backward
            loss = (out[-1] if isinstance(out, tuple) else out).float().sum()
        loss.backward()
    return run


def backbone_cases(slices: int, size: int, device: torch.device,
                   amp: bool) -> dict[str, Callable[[], None]]:
    """``(mode, D, model)`` -> call, for torchvision, no fusion and A3D."""
    from a3d_det.models.backbones import DenseNet3D
    torch.manual_seed(0)
    grey = torch.rand(slices, 1, size, size, device=device) * 255 - 50
    models = {TV: (torchvision_features(device), grey.expand(-1, 3, -1, -1).contiguous())}
    for fusion in FUSIONS:
        net = DenseNet3D(num_slices=slices, fusion=dict(type=fusion)).to(device)
        models[fusion] = (net, grey.transpose(0, 1).unsqueeze(0).contiguous())
    return {(mode, slices, name): backbone_call(m, x, mode == 'fwd+bwd', amp)
            for mode in ('inference', 'fwd+bwd') for name, (m, x) in models.items()}


def detector_cases(slices: int, size: int, device: torch.device,
                   amp: bool) -> dict[str, Callable[[], None]]:
    """``(mode, D, fusion)`` -> call of ``train_step``/``test_step``."""
    from mmengine.optim import build_optim_wrapper
    from mmengine.registry import init_default_scope

    import a3d_det.engine  # noqa: F401  (CPUAmpOptimWrapper)
    from a3d_det.registry import MODELS
    from a3d_det.utils.benchmarks import leaf_config
    from a3d_det.utils.benchmarks.train import make_batch
    init_default_scope('a3d_det')
    batch = make_batch(slices, size)
    cases, base_state = {}, None
    for fusion in FUSIONS:
        torch.manual_seed(0)
        cfg, _ = leaf_config(fusion, slices)
        if fusion == 'A3DConv':
            # P = I: the no-fusion model's activations, hence the same boxes
            # to post-process (their number, which random weights and drifting
            # batch-norm statistics set, moves test_step by 2x); the fusion
            # costs the same for any P
            cfg.model.backbone.fusion.init_noise = 0.0
        model = MODELS.build(cfg.model).to(device)
        if base_state is None:
            base_state = model.state_dict()
        else:
            model.load_state_dict(base_state, strict=False)   # A3D: + fusion_weight
        optim_cfg = cfg.optim_wrapper.to_dict()
        optim_cfg['optimizer'] = dict(optim_cfg['optimizer'], lr=0.0)
        if amp:
            optim_cfg['type'] = ('AmpOptimWrapper' if device.type == 'cuda'
                                 else 'CPUAmpOptimWrapper')
        wrapper = build_optim_wrapper(model, optim_cfg)

        def train(model=model, wrapper=wrapper) -> None:
            model.train()
            model.train_step(batch, wrapper)

        def test(model=model) -> None:
            model.eval()
            with _autocast(device, amp):
                model.test_step(batch)
        cases[('train_step', slices, fusion)] = train
        cases[('test_step', slices, fusion)] = test
    return cases


def summarise(timings: dict[tuple, Timings], slices: list[int]) -> list[dict[str, Any]]:
    """The rows of the issue's table: (what, D, ratio, times) per clock."""
    rows = []

    def add(what: str, key: tuple, base: tuple) -> None:
        if key in timings and base in timings:
            rows.append(dict(
                what=what, slices=key[1], ms=timings[key].median() * 1e3,
                base_ms=timings[base].median() * 1e3,
                ratio=median_ratio(timings[key].wall, timings[base].wall),
                cpu_ratio=median_ratio(timings[key].cpu, timings[base].cpu)))
    for d in slices:
        for mode in ('inference', 'fwd+bwd'):
            add(f'backbone {mode}: DenseNet3D no fusion / torchvision',
                (mode, d, 'NoFusionConv'), (mode, d, TV))
            add(f'backbone {mode}: DenseNet3D A3D / torchvision', (mode, d, 'A3DConv'),
                (mode, d, TV))
            add(f'backbone {mode}: DenseNet3D A3D / no fusion', (mode, d, 'A3DConv'),
                (mode, d, 'NoFusionConv'))
        for mode in ('train_step', 'test_step'):
            add(f'detector {mode}: A3D / no fusion', (mode, d, 'A3DConv'),
                (mode, d, 'NoFusionConv'))
    return rows


def format_table(rows: list[dict[str, Any]]) -> str:
    lines = ['| what | slices | ratio (wall) | times (median) | ratio (CPU time) |',
             '| --- | --- | --- | --- | --- |']
    for r in rows:
        lines.append(f"| {r['what']} | {r['slices']} | **{r['ratio']:.2f}x** | "
                     f"{r['ms']:.0f} vs {r['base_ms']:.0f} ms | {r['cpu_ratio']:.2f}x |")
    return '\n'.join(lines)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('--slices', nargs='+', type=int, default=[3, 7], help='slice counts D')
    parser.add_argument('--parts', nargs='+', choices=PARTS, default=list(PARTS),
                        help='what to time (default both)')
    parser.add_argument('--size', type=int, default=512, help='backbone input side (px)')
    parser.add_argument('--detector-size', type=int, default=None,
                        help='detector input side (default 256 on CPU, 512 on CUDA)')
    parser.add_argument('--amp', action='store_true',
                        help='autocast (CUDA fp16, CPU bf16) and AMP optimiser wrappers')
    parser.add_argument('--no-configs', action='store_true',
                        help='CUDA: skip the 14-config training table')
    parser.set_defaults(rounds=5, warmup=1)


def run(args: argparse.Namespace) -> dict:
    device = parse_device(args.device)
    det_size = args.detector_size or (512 if device.type == 'cuda' else 256)
    if any(d < 1 or d % 2 == 0 for d in args.slices):
        raise UserInputError('--slices must be positive odd numbers')
    if min(args.size, det_size) < 32 or args.size % 32 or det_size % 32:
        raise UserInputError('--size and --detector-size must be positive multiples of 32')
    cases: dict[tuple, Callable[[], None]] = {}
    for d in args.slices:
        if 'backbone' in args.parts:
            cases.update(backbone_cases(d, args.size, device, args.amp))
        if 'detector' in args.parts:
            cases.update(detector_cases(d, det_size, device, args.amp))
    timings = time_interleaved(cases, args.rounds, args.warmup, device)
    rows = summarise(timings, args.slices)
    print(f'{device_description(device)}; backbone {args.size}x{args.size}, detector '
          f'{det_size}x{det_size}, batch 1, {"AMP" if args.amp else "fp32"}, '
          f'{args.rounds} interleaved rounds after {args.warmup} warm-up')
    print(format_table(rows))
    result: dict[str, Any] = dict(
        rows=rows, timings={' '.join(map(str, k)): vars(t) for k, t in timings.items()})
    if device.type == 'cuda' and not args.no_configs:
        from a3d_det.utils.benchmarks import train as train_task
        settings = dict(device=args.device, size=512, amp=args.amp, threads=args.threads,
                        iters=3, warmup=2)
        configs = argparse.Namespace(fusions=list(train_task.METHODS), slices=args.slices,
                                     rounds=1)
        results = train_task.run_all(configs, settings)
        table = train_task.summarise(results)
        print(train_task.format_table(table, cpu=False))
        result['configs'] = table
    return result
