"""Bootstrap confidence intervals and paired comparisons.

Every figure we report is a *ratio of sums* over resampling units:
- a mean is sum(value) / sum(1);
- a corpus WER is sum(errors) / sum(reference tokens);
- a paired difference of means is sum(new - base) / sum(1), of corpus WERs
  (sum(errors_new) - sum(errors_base)) / sum(reference tokens).
So one bootstrap serves all of them. A speaker's figure resamples its utterances. The overall
figure uses a two-stage bootstrap: resample speakers, then utterances within each drawn
speaker. The interval then reflects both how much the result depends on which speakers were
enrolled and how noisy each speaker's figure is; resampling speakers alone would give an
absurdly narrow interval with two or three speakers.
Intervals are percentile intervals of B resamples with a fixed seed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

N_BOOT = 2000
ALPHA = 0.05


@dataclass(frozen=True)
class Estimate:
    value: float
    lo: float
    hi: float
    n: int  # resampling units (items, or speakers for overall figures)


def ratio_bootstrap(num: np.ndarray, den: np.ndarray, n_boot: int = N_BOOT, seed: int = 0,
                    alpha: float = ALPHA) -> Estimate | None:
    """Point estimate sum(num)/sum(den) with a percentile bootstrap interval over units."""
    num, den = np.asarray(num, float), np.asarray(den, float)
    n = len(num)
    if n == 0 or den.sum() <= 0:
        return None
    value = float(num.sum() / den.sum())
    if n == 1:
        return Estimate(value, float("nan"), float("nan"), 1)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, n, size=(n_boot, n))
    d = den[idx].sum(axis=1)
    ok = d > 0
    stats = num[idx].sum(axis=1)[ok] / d[ok]
    lo, hi = np.quantile(stats, [alpha / 2, 1 - alpha / 2])
    return Estimate(value, float(lo), float(hi), n)


def two_stage_bootstrap(groups: list[tuple[np.ndarray, np.ndarray]], n_boot: int = N_BOOT, seed: int = 0,
                        alpha: float = ALPHA) -> Estimate | None:
    """Ratio of sums over all groups' units; the interval resamples groups, then units within
    each drawn group. `n` is the number of groups."""
    groups = [(np.asarray(n, float), np.asarray(d, float)) for n, d in groups if np.sum(d) > 0]
    if not groups:
        return None
    if len(groups) == 1:
        return ratio_bootstrap(*groups[0], n_boot, seed, alpha)
    rng = np.random.default_rng(seed)
    # per group: B within-group resampled sums
    num_b, den_b = np.empty((len(groups), n_boot)), np.empty((len(groups), n_boot))
    for g, (num, den) in enumerate(groups):
        idx = rng.integers(0, len(num), size=(n_boot, len(num)))
        num_b[g], den_b[g] = num[idx].sum(axis=1), den[idx].sum(axis=1)
    pick = rng.integers(0, len(groups), size=(n_boot, len(groups)))
    cols = np.arange(n_boot)[:, None]
    nums, dens = num_b[pick, cols].sum(axis=1), den_b[pick, cols].sum(axis=1)
    ok = dens > 0
    lo, hi = np.quantile(nums[ok] / dens[ok], [alpha / 2, 1 - alpha / 2])
    value = sum(n.sum() for n, _ in groups) / sum(d.sum() for _, d in groups)
    return Estimate(float(value), float(lo), float(hi), len(groups))


def verdict(delta: Estimate, higher_is_better: bool) -> str:
    """'better' / 'worse' when the interval of the difference excludes zero, else no change."""
    if not np.isfinite(delta.lo) or not np.isfinite(delta.hi):
        return "no_significant_change"
    if delta.lo > 0:
        return "better" if higher_is_better else "worse"
    if delta.hi < 0:
        return "worse" if higher_is_better else "better"
    return "no_significant_change"


def roc_auc(genuine: np.ndarray, impostor: np.ndarray) -> float:
    """Probability that a genuine-pair score beats an impostor-pair score (ties count half)."""
    g, i = np.asarray(genuine, float)[:, None], np.asarray(impostor, float)[None, :]
    return float((g > i).mean() + 0.5 * (g == i).mean())


def equal_error_rate(genuine: np.ndarray, impostor: np.ndarray) -> float:
    """The error rate at the threshold where false accepts and false rejects are equal
    (the mean of the two at the closest threshold over all observed scores)."""
    g, i = np.asarray(genuine, float), np.asarray(impostor, float)
    best = (np.inf, 1.0)
    for t in np.unique(np.concatenate([g, i])):
        frr, far = float((g < t).mean()), float((i >= t).mean())
        best = min(best, (abs(frr - far), (frr + far) / 2))
    return best[1]
