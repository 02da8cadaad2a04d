"""FROC curves of several runs on one log-x plot, in the style of the papers.

Used by ``tools/analysis/plot_froc.py``. Sensitivity (%) against FPs per image
on a base-2 log axis with ticks at the reported levels (A3D Sec. 3), one
labelled line per run, markers at the levels' interpolated sensitivities.
"""
from __future__ import annotations

import os
import os.path as osp
from collections.abc import Mapping, Sequence

import numpy as np

from a3d_det.evaluation.froc import FP_LEVELS, check_fp_levels, interp_sens


def plot_froc_curves(curves: Mapping[str, tuple[np.ndarray, np.ndarray]],
                     out_file: str,
                     fp_levels: Sequence[float] = FP_LEVELS,
                     title: str | None = None,
                     dpi: int = 150) -> None:
    """Draw FROC curves and save the figure.

    Args:
        curves: label -> ``(sensitivity, fp_per_image)``, two (P,) arrays as
            returned by :func:`a3d_det.evaluation.froc_curve`.
        out_file: image path (``.png``, ``.pdf``, ``.svg`` ...); its folder
            is created.
        fp_levels: FP levels marked on the curves and used as x ticks.
        title: optional figure title.
        dpi: resolution of raster output.
    """
    # Figure + Agg canvas directly: no pyplot, no global backend switch.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import FixedLocator, NullLocator

    if not curves:
        raise ValueError('no FROC curve to plot')
    levels = np.asarray(check_fp_levels(fp_levels), dtype=np.float64)
    x_lo, x_hi = levels.min() / 1.5, levels.max() * 1.5
    fig = Figure(figsize=(5.5, 4.2))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    for label, (sens, fps) in curves.items():
        sens, fps = np.asarray(sens, float), np.asarray(fps, float)
        at_levels = interp_sens(sens, fps, levels)
        # The curve from its first point with FPs > 0 (log axis), continued
        # flat to the right edge like the levels beyond its end.
        keep = fps > 0
        xs = np.concatenate([fps[keep], [max(x_hi, fps.max(initial=0))]])
        ys = np.concatenate([sens[keep], [sens[-1] if len(sens) else 0.0]])
        line, = ax.plot(xs, 100 * ys, linewidth=1.5, label=label)
        ax.plot(levels, 100 * at_levels, 'o', markersize=4,
                color=line.get_color())
    ax.set_xscale('log', base=2)
    ax.set_xlim(x_lo, x_hi)
    ax.xaxis.set_major_locator(FixedLocator(levels))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.set_xticklabels([f'{lv:g}' for lv in levels])
    ax.set_xlabel('FPs per image')
    ax.set_ylabel('Sensitivity (%)')
    ax.grid(True, which='major', linestyle=':', linewidth=0.8)
    ax.legend(loc='lower right', fontsize=9)
    if title:
        ax.set_title(title)
    fig.tight_layout()
    folder = osp.dirname(osp.abspath(out_file))
    os.makedirs(folder, exist_ok=True)
    fig.savefig(out_file, dpi=dpi)
