"""Statistics of the ablation tables: t-based confidence intervals over seeds, gaps between
two cells with a two-sided test, and power (the minimal detectable gap, seeds needed).

Two cells are compared *paired* on the seeds they share: the same seed gives both arms
of an ablation the same data order and augmentation (and, where the parameter shapes agree,
the same initialization), so the test runs on the per-seed differences (paired t-test).
Otherwise Welch's t-test. Every distribution comes from scipy.stats.
"""

from __future__ import annotations

import dataclasses
import math
import statistics

from scipy import optimize, stats

ALPHA = 0.05
POWER = 0.8


def mean_ci(xs: list[float], level: float = 0.95) -> tuple[float, float, float]:
  """(mean, low, high): the t-based confidence interval of the mean; low = high = mean for
  a single value (no interval)."""
  m = statistics.fmean(xs)
  if len(xs) < 2:
    return m, m, m
  half = stats.t.ppf(0.5 + level / 2, len(xs) - 1) * statistics.stdev(xs) / math.sqrt(len(xs))
  return m, m - half, m + half


@dataclasses.dataclass(frozen=True)
class Gap:
  """``a - b`` with its 95% CI and two-sided p-value; ``test`` is "paired t" or "Welch t"."""
  gap: float
  low: float
  high: float
  p: float | None
  n: int
  test: str
  sd: float | None  # sd of the per-seed differences (paired) or the pooled per-cell sd
  # Paired: sqrt(var(a) + var(b)) over the shared seeds, the differences' sd had the arms
  # been drawn independently with these spreads (what pairing is measured against).
  sd_unpaired: float | None = None

  @property
  def significant(self) -> bool:
    return self.p is not None and self.p < ALPHA

  @property
  def r(self) -> float | None:
    """1 - var(differences) / (var(a) + var(b)) over the paired seeds: the arms'
    correlation (Pearson's r where their spreads agree). The paired test needs 1 - r times
    the seeds of an unpaired one: no saving at r = 0. None for unpaired or constant arms."""
    if self.sd is None or not self.sd_unpaired:
      return None
    return 1.0 - self.sd ** 2 / self.sd_unpaired ** 2

  def __str__(self) -> str:
    if self.p is None:
      return f"{self.gap:+.2f} (n={self.n}, no test)"
    return f"{self.gap:+.2f} [{self.low:+.2f}, {self.high:+.2f}] p{_fmt_p(self.p)}"


def _fmt_p(p: float) -> str:
  return f"={p:.3f}" if p >= 0.001 else "<0.001"


def compare(a: dict, b: dict) -> Gap | None:
  """The gap mean(a) - mean(b) between two cells given as {seed: value}: paired on the
  seeds both cells hold when there are at least two of them (or they hold the same seeds),
  else Welch on all values. None when either is empty."""
  if not a or not b:
    return None
  common = sorted(set(a) & set(b))
  if set(a) == set(b) or len(common) >= 2:
    a, b = {s: a[s] for s in common}, {s: b[s] for s in common}
    d = [a[s] - b[s] for s in common]
    m, lo, hi = mean_ci(d)
    if len(d) < 2:
      return Gap(m, lo, hi, None, len(d), "paired t", None)
    sd = statistics.stdev(d)
    p = 1.0 if sd == 0 and m == 0 else float(stats.ttest_rel(
        [a[s] for s in sorted(a)], [b[s] for s in sorted(a)]).pvalue)
    unpaired = math.sqrt(statistics.variance(a.values()) + statistics.variance(b.values()))
    return Gap(m, lo, hi, p, len(d), "paired t", sd, unpaired)
  xa, xb = list(a.values()), list(b.values())
  m = statistics.fmean(xa) - statistics.fmean(xb)
  if min(len(xa), len(xb)) < 2:
    return Gap(m, m, m, None, min(len(xa), len(xb)), "Welch t", None)
  res = stats.ttest_ind(xa, xb, equal_var=False)
  lo, hi = res.confidence_interval(0.95)
  pooled = math.sqrt((statistics.variance(xa) + statistics.variance(xb)) / 2)
  return Gap(m, float(lo), float(hi), float(res.pvalue), min(len(xa), len(xb)), "Welch t",
             pooled)


def power(delta: float, sd: float, n: int, paired: bool = True, alpha: float = ALPHA) -> float:
  """Power of the two-sided t-test to detect a true gap ``delta`` with ``n`` seeds per arm
  (paired: ``sd`` of the per-seed differences; unpaired: the per-cell sd, equal n)."""
  if n < 2:
    return 0.0
  if sd <= 0:
    return 1.0
  df = n - 1 if paired else 2 * n - 2
  se = sd / math.sqrt(n) if paired else sd * math.sqrt(2 / n)
  crit = stats.t.ppf(1 - alpha / 2, df)
  nc = abs(delta) / se
  out = float(stats.nct.sf(crit, df, nc) + stats.nct.cdf(-crit, df, nc))
  return 1.0 if math.isnan(out) else min(out, 1.0)  # nct is NaN far in its tail


def minimal_detectable_gap(sd: float, n: int, paired: bool = True, alpha: float = ALPHA,
                           target: float = POWER) -> float | None:
  """The smallest true gap the test detects with probability ``target`` (80%) at level
  ``alpha``, for ``n`` seeds and the measured ``sd``; None when n < 2."""
  if n < 2:
    return None
  if sd <= 0:
    return 0.0
  se = sd / math.sqrt(n) if paired else sd * math.sqrt(2 / n)
  high = se
  while power(high, sd, n, paired, alpha) < target:
    high *= 2
  return float(optimize.brentq(lambda d: power(d, sd, n, paired, alpha) - target,
                               1e-9 * se, high))


def seeds_needed(delta: float, sd: float, paired: bool = True, alpha: float = ALPHA,
                 target: float = POWER, max_n: int = 10_000) -> int | None:
  """The fewest seeds per arm whose test detects ``delta`` with probability ``target``."""
  for n in range(2, max_n + 1):
    if power(delta, sd, n, paired, alpha) >= target:
      return n
  return None


def pooled_sd(gaps: list[Gap]) -> tuple[float, int] | None:
  """(sd, typical n): the root mean square of the gaps' sds weighted by degrees of freedom,
  and their median n; None when no gap has an sd."""
  with_sd = [g for g in gaps if g.sd is not None and g.n >= 2]
  if not with_sd:
    return None
  dof = sum(g.n - 1 for g in with_sd)
  sd = math.sqrt(sum((g.n - 1) * g.sd ** 2 for g in with_sd) / dof)
  return sd, int(statistics.median_low([g.n for g in with_sd]))


def pooled_r(gaps: list[Gap]) -> float | None:
  """The arms' correlation over the seeds, pooled over paired gaps as pooled_sd pools:
  1 - (dof-weighted var of the differences) / (dof-weighted var(a) + var(b)); None when
  no paired gap has two seeds and a spread."""
  both = [g for g in gaps if g.r is not None]
  if not both:
    return None
  paired = sum((g.n - 1) * g.sd ** 2 for g in both)
  return 1.0 - paired / sum((g.n - 1) * g.sd_unpaired ** 2 for g in both)


def holm(pvalues: list[float], alpha: float = ALPHA) -> list[bool]:
  """Holm-Bonferroni: which of the hypotheses are rejected at family-wise level alpha."""
  order = sorted(range(len(pvalues)), key=lambda i: pvalues[i])
  rejected = [False] * len(pvalues)
  for rank, i in enumerate(order):
    if pvalues[i] > alpha / (len(pvalues) - rank):
      break
    rejected[i] = True
  return rejected
