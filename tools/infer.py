"""Detect lesions on a patient's CT.

``python tools/infer.py CONFIG CHECKPOINT INPUT --out-dir DIR [options]``

INPUT is a folder holding one DICOM CT series (any file names; classic,
compressed or enhanced multi-frame files), a single DICOM file, a NIfTI
volume (``.nii``/``.nii.gz``), or a folder of DeepLesion-style 16-bit PNG
slices (give ``--slice-interval``). Writes ``DIR/detections.json`` (every
processed slice, ordered along z, with its detections, and the lesions they
link into across slices), ``DIR/slice_NNNN.png`` overlays for the slices with
detections, ``DIR/lesion_NNN.png`` per lesion and, with ``--save-masks``,
``DIR/lesions.nii.gz`` (a label volume on the input's grid). Bad input gets a
one-line ``error: ...`` and exit status 2.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
import warnings

import torch
from mmengine.utils import ProgressBar

from a3d_det.apis import (assign_lesions, crop_mask, inference_detector,
                          init_detector, kept_indices, lesion_label_volume,
                          series_report, slice_report, write_label_volume,
                          write_lesion_pictures, write_overlays)
from a3d_det.datasets.dicom import SeriesError, SeriesWarning, read_ct_series
from a3d_det.utils.cli import run_cli, write_json
from a3d_det.utils.errors import UserInputError
from a3d_det.utils.runner_config import load_config


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Detect lesions on a CT series (DICOM, NIfTI or DeepLesion PNG)')
    parser.add_argument('config', help='config file (.py)')
    parser.add_argument('checkpoint', help='checkpoint file (.pth)')
    parser.add_argument('input', help='DICOM series folder, DICOM file, NIfTI '
                        'file (.nii, .nii.gz) or folder of 16-bit PNG slices')
    parser.add_argument('--out-dir', required=True,
                        help='where detections.json and the overlays go')
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu',
                        help='cpu or cuda[:N] (default: cuda when available)')
    parser.add_argument('--score-thr', type=float, default=0.5,
                        help='lowest score reported and drawn (default 0.5)')
    parser.add_argument('--slices', nargs='+', metavar='I',
                        help='slice indices (0-based, along z) to process, '
                        'e.g. 10 12 20-30 (default: all)')
    parser.add_argument('--series', metavar='UID',
                        help='SeriesInstanceUID when the folder holds several')
    parser.add_argument('--slice-interval', type=float, metavar='MM',
                        help='slice interval in mm (required for PNG input; '
                        'overrides the DICOM positions)')
    parser.add_argument('--spacing', type=float, metavar='MM',
                        help='in-plane pixel spacing in mm for PNG input')
    parser.add_argument('--batch-size', type=int, default=1,
                        help='key slices per forward pass (default 1)')
    parser.add_argument('--link-iou', type=float, default=0.3, metavar='IOU',
                        help='lowest box IoU linking detections on nearby slices '
                        'into one lesion (default 0.3)')
    parser.add_argument('--link-gap', type=int, default=1, metavar='N',
                        help='missed slices a lesion may bridge (default 1)')
    parser.add_argument('--save-masks', action='store_true',
                        help='write lesions.nii.gz: a label volume (0 background, '
                        'lesion id elsewhere) on the input\'s grid')
    return parser.parse_args(argv)


def parse_slices(tokens, n: int) -> list:
    """``['3', '10-12', '7,8']`` -> sorted unique indices, checked against n."""
    if not tokens:
        return list(range(n))
    out = set()
    for token in tokens:
        for part in filter(None, token.split(',')):
            try:
                if '-' in part.strip('-') and not part.startswith('-'):
                    a, b = (int(v) for v in part.split('-'))
                    if b < a:
                        raise ValueError
                    out.update(range(a, b + 1))
                else:
                    out.add(int(part))
            except ValueError:
                raise UserInputError(f'--slices: cannot read {part!r}; use '
                                     'indices like 5 or ranges like 10-20') from None
    bad = sorted(i for i in out if not 0 <= i < n)
    if bad:
        raise UserInputError(f'--slices: {bad} outside the series (0..{n - 1})')
    return sorted(out)


def main(argv=None) -> None:
    args = parse_args(argv)
    if args.batch_size < 1:
        raise UserInputError('--batch-size must be at least 1')
    if args.slice_interval is not None and not args.slice_interval > 0:
        raise UserInputError('--slice-interval must be positive')
    if not 0 <= args.link_iou <= 1:
        raise UserInputError('--link-iou must be between 0 and 1')
    if args.link_gap < 0:
        raise UserInputError('--link-gap must be at least 0')
    cfg = load_config(args.config)
    if not os.path.isfile(args.checkpoint):
        raise UserInputError(f'checkpoint not found: {args.checkpoint}')

    # 1. The series: HU volume ordered along z, spacing, slice interval.
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', SeriesWarning)
        try:
            series = read_ct_series(args.input, series_uid=args.series,
                                    slice_interval=args.slice_interval,
                                    spacing=args.spacing)
        except SeriesError as e:
            raise UserInputError(str(e)) from None
    for note in series.notes:
        print(f'note: {note}', file=sys.stderr)
    keys = parse_slices(args.slices, series.num_slices)

    # 2. The detector.
    try:
        model = init_detector(cfg, args.checkpoint, device=args.device)
    except (FileNotFoundError, ValueError) as e:
        raise UserInputError(str(e)) from None

    # 3. Detections on the key slices, in original pixels, a batch at a time:
    # each batch's masks become long axes, areas, crops and pictures, then go.
    start = time.perf_counter()
    entries, overlays, masks = [], [], {}
    progress = ProgressBar(len(keys), file=sys.stderr) if len(keys) > 1 else None
    for i in range(0, len(keys), args.batch_size):
        results = inference_detector(model, series.volume, series.spacing,
                                     series.slice_interval, keys[i:i + args.batch_size],
                                     batch_size=args.batch_size)
        for r in results:
            entries.append(slice_report(series, r, args.score_thr))
            for j, k in enumerate(kept_indices(r, args.score_thr)):
                masks[(int(r['index']), j)] = crop_mask(r['masks'][k])
        overlays += write_overlays(series, results, args.score_thr, args.out_dir)
        if progress is not None:
            progress.update(len(results))
    if progress is not None:
        print(file=sys.stderr)
    seconds = time.perf_counter() - start

    # 4. Lesions across slices, their pictures and the mask volume.
    lesions, members = assign_lesions(entries, iou_thr=args.link_iou,
                                      max_gap=args.link_gap,
                                      slice_interval=series.slice_interval)
    by_index = {e['index']: e for e in entries}
    for lesion, group in zip(lesions, members):
        for index, j in group:
            by_index[index]['detections'][j]['lesion'] = lesion['id']
    write_lesion_pictures(series, lesions, members, entries, masks, args.out_dir)
    extra = dict(input=os.path.abspath(args.input), config=os.path.abspath(args.config),
                 checkpoint=os.path.abspath(args.checkpoint),
                 link=dict(iou_thr=args.link_iou, max_gap=args.link_gap),
                 lesions=lesions)
    if args.save_masks:
        label = lesion_label_volume(series.volume.shape, lesions, members, masks)
        extra['mask_volume'] = 'lesions.nii.gz'
        write_label_volume(series, label, os.path.join(args.out_dir, 'lesions.nii.gz'))

    # 5. detections.json and the summary.
    report = series_report(series, entries, args.score_thr, extra=extra)
    write_json(os.path.join(args.out_dir, 'detections.json'), report)
    n_det = sum(len(s['detections']) for s in report['slices'])
    print(lesion_table(lesions))
    print(f'{len(keys)} slice(s) in {seconds:.1f} s ({seconds / len(keys):.2f} s per '
          f'slice): {n_det} detection(s) >= {args.score_thr} on {len(overlays)} '
          f'slice(s), {len(lesions)} lesion(s); wrote '
          f'{os.path.join(args.out_dir, "detections.json")}')


def _fmt(value, spec: str) -> str:
    return '-' if value is None else format(value, spec)


def lesion_table(lesions: list[dict]) -> str:
    """The lesions as a text table: id, slices, z range, long axis, volume, score."""
    if not lesions:
        return 'no lesions'
    rows = [('id', 'slices', 'z range (mm)', 'long axis (mm)', 'volume (mm3)', 'score')]
    for les in lesions:
        first, last = les['slices'][0], les['slices'][-1]
        z = les['z_range_mm']
        rows.append((
            str(les['id']),
            f'{first}-{last} ({len(les["slices"])})' if last != first else f'{first} (1)',
            f'{z[0]:.1f} to {z[1]:.1f}' if z else '-',
            _fmt(les['long_axis_mm'], '.1f'),
            _fmt(les['volume_mm3'], '.0f'),
            f'{les["score"]:.3f}'))
    widths = [max(len(r[c]) for r in rows) for c in range(len(rows[0]))]
    return '\n'.join('  '.join(v.rjust(w) for v, w in zip(r, widths)) for r in rows)


if __name__ == '__main__':
    run_cli(main)
