"""Bootstrap 95 % confidence intervals over cases (percentile method, fixed seed).

Cases are resampled, not steps: the steps of one multi-turn case share a conversation and are
not independent. The overall interval resamples within each scenario (stratified), because the
suite's scenario mix is fixed by design rather than sampled. Seeds are derived per group from
the run's seed and a CRC of the group's name, so adding a scenario does not move the others.
"""

from __future__ import annotations

import zlib
from typing import Mapping, Sequence

import numpy as np

from .metrics import COUNTERS, METRICS

DEFAULT_SEED = 20260501
DEFAULT_RESAMPLES = 1000


def _group_seed(seed: int, name: str) -> int:
    return (seed * 1_000_003 + zlib.crc32(name.encode())) % (2**32)


def resampled_totals(strata: Sequence[np.ndarray], resamples: int, seed: int) -> np.ndarray:
    """(resamples, counters) sums of case-count rows drawn with replacement within each stratum."""
    rng = np.random.default_rng(seed)
    total = np.zeros((resamples, len(COUNTERS)), dtype=np.int64)
    for rows in strata:
        if len(rows):
            picks = rng.integers(0, len(rows), size=(resamples, len(rows)))
            total += rows[picks].sum(axis=1)
    return total


def confidence_intervals(strata: Mapping[str, Sequence[Mapping[str, int]]], *, name: str,
                         resamples: int = DEFAULT_RESAMPLES, seed: int = DEFAULT_SEED,
                         ) -> dict[str, tuple[float, float] | None]:
    """95 % percentile intervals of every metric; `strata` maps a stratum to its cases' counts."""
    arrays = [np.array([[case[k] for k in COUNTERS] for case in cases], dtype=np.int64).reshape(-1, len(COUNTERS))
              for _, cases in sorted(strata.items())]
    totals = resampled_totals(arrays, resamples, _group_seed(seed, name))
    intervals: dict[str, tuple[float, float] | None] = {}
    for metric, fn in METRICS.items():
        values = [v for row in totals if (v := fn(dict(zip(COUNTERS, row.tolist())))) is not None]
        if not values:
            intervals[metric] = None
            continue
        low, high = np.percentile(values, [2.5, 97.5])
        intervals[metric] = (float(low), float(high))
    return intervals
