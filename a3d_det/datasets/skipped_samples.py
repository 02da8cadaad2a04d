"""Unreadable training samples: skipped up to a limit, then an error listing them.

A training sample whose key slice or a neighbour cannot be read (a corrupt
PNG, a file missing from a half-extracted archive) is skipped and another is
drawn (:class:`~a3d_det.datasets.DeepLesionDataset` in training mode). A few
such samples among tens of thousands should not end a run hours in; many
mean the data is broken, and training stops once more than
``max_skipped_fraction`` of the dataset's samples were skipped. Validation
and test never skip: a skipped image would change FROC.
"""
from __future__ import annotations

import math
from collections.abc import Mapping

from a3d_det.utils.errors import UserInputError

#: Default of ``max_skipped_fraction``: 1 % of the dataset's samples.
DEFAULT_MAX_SKIPPED_FRACTION = 0.01
#: The data sample metainfo key that carries ``{file_name: reason}`` of the
#: samples skipped while fetching it (read by ``SkippedSamplesHook``).
SKIPPED_KEY = 'skipped_samples'


class SkippedSamplesError(UserInputError, RuntimeError):
    """More training samples were unreadable than ``max_skipped_fraction`` allows.

    A problem of the user's data, so the tools report it without a traceback
    (``error: training stopped: ...`` and the list of files, exit status 2).
    """


def check_fraction(max_skipped_fraction: float) -> float:
    """``max_skipped_fraction`` as a float in [0, 1].

    Raises:
        ValueError: outside [0, 1] or not a number.
    """
    value = float(max_skipped_fraction)
    if not 0.0 <= value <= 1.0:
        raise ValueError(f'max_skipped_fraction must be in [0, 1], got {max_skipped_fraction}')
    return value


def skipped_summary(skipped: Mapping[str, str], num_samples: int,
                    max_skipped_fraction: float) -> str:
    """``'3 of 4100 training samples skipped (0.07 %; max_skipped_fraction=0.01
    allows 41)'``."""
    share = 100.0 * len(skipped) / num_samples if num_samples else 0.0
    allowed = math.floor(max_skipped_fraction * num_samples + 1e-9)
    return (f'{len(skipped)} of {num_samples} training samples skipped ({share:.2f} %; '
            f'max_skipped_fraction={max_skipped_fraction:g} allows {allowed})')


def check_skipped(skipped: Mapping[str, str], num_samples: int,
                  max_skipped_fraction: float) -> None:
    """Raise when more than ``max_skipped_fraction * num_samples`` were skipped.

    Args:
        skipped: ``{key file name: reason naming the unreadable file}``.
        num_samples: the dataset's length.
        max_skipped_fraction: the limit, a fraction of ``num_samples``.

    Raises:
        SkippedSamplesError: listing every skipped sample with its reason.
    """
    if len(skipped) <= max_skipped_fraction * num_samples + 1e-9:
        return
    lines = '\n'.join(f'  {name}: {reason}' for name, reason in sorted(skipped.items()))
    raise SkippedSamplesError(
        f'training stopped: {skipped_summary(skipped, num_samples, max_skipped_fraction)}. '
        f'Unreadable samples:\n{lines}\n'
        'Restore these files (tools/dataset_converters/prepare_deeplesion.py lists every '
        'unreadable slice of a tree) or raise the dataset\'s max_skipped_fraction.')
