"""Automated canary judgement: a candidate's samples against the baseline's, metric by metric,
and one weighted score (Kayenta's NetflixACAJudge, natively).

Pure: no I/O, no clock. scipy and numpy are imported inside the functions, never at import
time, so an operator that judges nothing keeps its idle memory (importing scipy.stats costs
tens of MiB and most of a second of CPU; the first judgement pays it once).

A continuous metric (latency, CPU per request) is compared with the Mann-Whitney U test and
the Hodges-Lehmann estimate of the shift with its distribution-free interval; a proportion
(errors per request) with the two-proportion z-test and Newcombe's interval. A metric fails only
when the change is significant AND beyond its tolerance in the direction that is bad for it;
too few samples is Inconclusive, never a pass. `score` weighs the metrics' verdicts as
Kayenta's weighted-sum scorer and threshold classifier do.
"""

from __future__ import annotations

import dataclasses
import math
import struct
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    Floats = npt.NDArray[np.float64]
    Ints = npt.NDArray[np.intp]

Direction = Literal["increase", "decrease", "either"]
"""Which change is bad for the metric: a latency's is an increase, a throughput's a decrease."""
MetricVerdict = Literal["Pass", "Fail", "Inconclusive"]
Verdict = Literal["Successful", "Failed", "Inconclusive"]

OUTLIER_FACTOR = 3.0
"""Tukey's fences at 3 IQR, as Kayenta removes outliers before comparing: spinnaker/kayenta,
kayenta-judge/.../judge/NetflixACAJudge.scala `transformMetric` builds
`IQRDetector(factor = 3.0, reduceSensitivity = true)` (the detector's own default is 1.5);
detectors/IQRDetector.scala: with reduceSensitivity the fences are widened to the 1st and 99th
percentiles when those lie further out, so at most the extreme 1% on each side goes (and none
below 100 samples). Quantiles as its commons-math `StatUtils.percentile`: position p(n+1),
numpy's "weibull" method."""

LARGEST = 1e150
"""A sample beyond ±LARGEST is dropped with NaN and inf: no metric measures that, and keeping
it out keeps every difference, quantile and ratio computed here finite."""


MAX_COUNT = 2**53
"""More trials than this is not a count (past it floats skip integers; a status field is an
int64): that side has no usable trial."""


@dataclasses.dataclass(frozen=True)
class Summary:
    """Five-number summary of one side after outlier removal (a box plot's)."""

    min: float
    q1: float
    median: float
    q3: float
    max: float


@dataclasses.dataclass(frozen=True)
class MetricResult:
    verdict: MetricVerdict
    candidate_n: int
    """Samples (continuous) or trials (proportion) used, after outlier removal."""
    baseline_n: int
    removed: int
    """Outliers removed, both sides together (0 for proportions)."""
    estimate: float
    """Continuous: the Hodges-Lehmann shift candidate - baseline; proportion: pc - pb."""
    lower: float
    """The estimate's confidence interval."""
    upper: float
    relative: float | None
    """The estimate relative to the baseline's level (its median, or its rate); None when that
    level is 0."""
    p_value: float
    """Two-sided; 1.0 when there is no difference to test, never NaN."""
    candidate: Summary | None
    """Continuous only, None for proportions (and for a side with no sample)."""
    baseline: Summary | None
    message: str
    """One short line for people (at most 200 characters)."""


def continuous(
    candidate: Sequence[float],
    baseline: Sequence[float],
    *,
    direction: Direction = "increase",
    tolerance: float = 0.1,
    confidence: float = 0.95,
    min_samples: int = 20,
    outliers: bool = True,
) -> MetricResult:
    """Compare the candidate's samples of a metric with the baseline's.

    NaN and inf samples are dropped, then (`outliers`) each side's outliers (`OUTLIER_FACTOR`).
    Fewer than `min_samples` left on either side: Inconclusive. Else `Fail` iff the
    Mann-Whitney p-value is below 1 - confidence and the shift's interval lies beyond
    `tolerance` * |baseline median| in the bad `direction` (any shift away from a baseline
    median of 0 is beyond it); otherwise `Pass`."""
    _check(tolerance, confidence, min_samples)
    import numpy as np

    sides = []
    removed = 0
    for raw in (candidate, baseline):
        x = np.asarray(raw, dtype=np.float64).ravel()
        x = x[np.isfinite(x) & (np.abs(x) <= LARGEST)]
        if outliers:
            kept = _without_outliers(x)
            removed += len(x) - len(kept)
            x = kept
        sides.append(np.sort(x))
    c, b = sides
    n, m = len(c), len(b)
    c_summary, b_summary = _summary(c), _summary(b)
    if n < min_samples or m < min_samples:
        return _inconclusive(n, m, min_samples, "samples", removed, c_summary, b_summary)

    p_value = _mann_whitney(c, b)[1]
    estimate, lower, upper = _hodges_lehmann(c, b, confidence)
    level = abs(float(np.median(b)))
    ratios = _ratios((estimate, lower, upper), level)
    # the interval beyond the tolerance, in each direction (a level of 0: beyond 0 at all)
    up, down = (lower, upper) if ratios is None else (ratios[1], ratios[2])
    limit = 0.0 if ratios is None else tolerance
    bad = _bad(direction, up > limit, down < -limit)
    verdict: MetricVerdict = "Fail" if bad and p_value < 1 - confidence else "Pass"
    head = _head(estimate, lower, upper, ratios, confidence, p_value, _plain)
    return MetricResult(
        verdict=verdict,
        candidate_n=n,
        baseline_n=m,
        removed=removed,
        estimate=estimate,
        lower=lower,
        upper=upper,
        relative=None if ratios is None else ratios[0],
        p_value=p_value,
        candidate=c_summary,
        baseline=b_summary,
        message=_tail(head, bad, verdict, direction, tolerance, ratios is None, confidence),
    )


def proportion(
    candidate_events: float,
    candidate_total: float,
    baseline_events: float,
    baseline_total: float,
    *,
    direction: Direction = "increase",
    tolerance: float = 0.1,
    confidence: float = 0.95,
    min_samples: int = 100,
) -> MetricResult:
    """Compare the candidate's rate of events (errors per request) with the baseline's.

    Counts may be floats (Prometheus' `increase()`): rounded to the nearest integer, events
    clamped to [0, total]; a NaN or inf count, or a total beyond `MAX_COUNT`, leaves its side
    with no trial. Fewer than
    `min_samples` trials on either side: Inconclusive. Else `Fail` iff the z-test's p-value is
    below 1 - confidence and the rate moved in the bad `direction` by more than `tolerance`
    of the baseline's rate (from a baseline rate of 0: any significant rise); otherwise
    `Pass`."""
    _check(tolerance, confidence, min_samples)
    xc, nc = _counts(candidate_events, candidate_total)
    xb, nb = _counts(baseline_events, baseline_total)
    if nc < min_samples or nb < min_samples:
        return _inconclusive(nc, nb, min_samples, "trials", 0, None, None)
    pc, pb = xc / nc, xb / nb
    pooled = (xc + xb) / (nc + nb)
    if pooled in (0.0, 1.0):
        # no variance to test against: both sides had no event, or nothing but events
        what = "no event" if pooled == 0.0 else "every trial an event"
        return MetricResult(
            verdict="Pass",
            candidate_n=nc,
            baseline_n=nb,
            removed=0,
            estimate=0.0,
            lower=0.0,
            upper=0.0,
            relative=None if pb == 0.0 else 0.0,
            p_value=1.0,
            candidate=None,
            baseline=None,
            message=f"no difference: {what} on either side",
        )
    from scipy import stats

    # The two-proportion z-test with the pooled variance; a chi-square test of the 2x2 table
    # without continuity correction is the same test (its statistic is z², its p-value the
    # same), but z keeps the direction. No continuity correction: it makes the test
    # conservative, and it would not match Newcombe's interval (without correction) below.
    se = math.sqrt(pooled * (1 - pooled) * (1 / nc + 1 / nb))
    z = (pc - pb) / se
    p_value = _p(2 * float(stats.norm.sf(abs(z))))
    # Newcombe's hybrid score interval (Newcombe 1998, Statistics in Medicine 17:873, method
    # 10): from the two Wilson score intervals, so it stays sensible with 0 events (a Wald
    # interval collapses to a point there).
    zq = float(stats.norm.isf((1 - confidence) / 2))
    lc, uc = _wilson(xc, nc, zq)
    lb, ub = _wilson(xb, nb, zq)
    estimate = pc - pb
    lower = estimate - math.sqrt((pc - lc) ** 2 + (ub - pb) ** 2)
    upper = estimate + math.sqrt((uc - pc) ** 2 + (pb - lb) ** 2)
    ratios = _ratios((estimate, lower, upper), pb)
    rel = None if ratios is None else ratios[0]
    if rel is None:  # a baseline rate of 0: any rise is beyond the tolerance
        bad = _bad(direction, estimate > 0, estimate < 0)
    else:
        bad = _bad(direction, rel > tolerance, rel < -tolerance)
    verdict: MetricVerdict = "Fail" if bad and p_value < 1 - confidence else "Pass"
    head = _head(estimate, lower, upper, ratios, confidence, p_value, _points)
    return MetricResult(
        verdict=verdict,
        candidate_n=nc,
        baseline_n=nb,
        removed=0,
        estimate=estimate,
        lower=lower,
        upper=upper,
        relative=rel,
        p_value=p_value,
        candidate=None,
        baseline=None,
        message=_tail(head, bad, verdict, direction, tolerance, ratios is None, confidence),
    )


def score(
    results: Sequence[tuple[MetricResult, float]],
    *,
    pass_score: float = 95,
    marginal_score: float = 75,
) -> tuple[Verdict, float]:
    """The weighted score of the metrics' results (metric, weight): 100 * the weight of the
    metrics that passed over the weight of all, to 1 decimal. Inconclusive if any metric is;
    else Successful from `pass_score`, Failed below `marginal_score`, Inconclusive between
    (Kayenta's ThresholdScoreClassifier: marginal)."""
    if not results:
        raise ValueError("no metric to score")
    weights = [w for _, w in results]
    if any(not math.isfinite(w) or w < 0 for w in weights) or sum(weights) <= 0:
        raise ValueError(f"weights must be finite, >= 0 and not all 0: {weights}")
    passed = sum(w for r, w in results if r.verdict == "Pass")
    value = round(100 * passed / sum(weights), 1)
    if any(r.verdict == "Inconclusive" for r, _ in results):
        return "Inconclusive", value
    if value >= pass_score:
        return "Successful", value
    if value < marginal_score:
        return "Failed", value
    return "Inconclusive", value


# -- the statistics ------------------------------------------------------------------------------


def _mann_whitney(c: Floats, b: Floats) -> tuple[float, float]:
    """U of the candidate and the two-sided p-value. The asymptotic method with continuity
    correction: its variance has the tie correction (samples of a metric tie often), which the
    exact method does not."""
    from scipy import stats

    res = stats.mannwhitneyu(
        c, b, alternative="two-sided", method="asymptotic", use_continuity=True
    )
    return float(res.statistic), _p(float(res.pvalue))


def _hodges_lehmann(c: Floats, b: Floats, confidence: float) -> tuple[float, float, float]:
    """The Hodges-Lehmann shift (the median of the n·m differences c_i - b_j) and its
    distribution-free interval, from sorted samples.

    The interval is the standard one (Moses'; Hollander & Wolfe, Nonparametric Statistical
    Methods, chapter 4; R's `wilcox.test(conf.int = TRUE)`): [d_(k), d_(nm-k+1)] of the
    ordered differences, k the largest rank with P(U <= k - 1) <= (1 - confidence)/2. k comes
    from U's normal approximation with a continuity correction (k = floor(nm/2 - z*s + 1/2),
    s² = nm(n+m+1)/12, without ties); on Hollander & Wolfe's permeability example it gives R's
    exact k."""
    from scipy import stats

    n, m = len(c), len(b)
    nm = n * m
    z = float(stats.norm.isf((1 - confidence) / 2))
    k = max(1, math.floor(nm / 2 - z * math.sqrt(nm * (n + m + 1) / 12) + 0.5))
    ranks = [k, nm - k + 1, (nm + 1) // 2, nm // 2 + 1]
    lower, upper, mid_lo, mid_hi = (_select(c, b, r) for r in ranks)
    estimate = mid_lo if nm % 2 else (mid_lo + mid_hi) / 2
    return estimate, lower, upper


_GATHER = 4096
"""Below this many differences between the bounds, `_select` computes and sorts them."""


def _select(c: Floats, b: Floats, rank: int) -> float:
    """The `rank`-th smallest (from 1) of the differences c_i - b_j of sorted c and b, exactly
    as numpy computes them (`np.subtract.outer(c, b)`), without making the n·m of them.

    A bisection over values: `_at_most(t)` counts the differences <= t in O(n log m), since
    they are sorted along each row. Bounds lo < answer <= hi are narrowed (by value, then, when
    the floats between them are few, by their bit patterns, so it ends) until few differences
    lie between them; those are computed and sorted."""
    import numpy as np

    n, m = len(c), len(b)
    lo_key = _key(float(c[0] - b[-1])) - 1  # below the smallest difference
    hi = float(c[-1] - b[0])  # the largest
    lo = _float(lo_key)
    p_lo = np.full(n, m, dtype=np.intp)  # per row, the first column whose difference <= lo
    p_hi = np.zeros(n, dtype=np.intp)
    below = 0  # differences <= lo
    within = n * m  # differences in (lo, hi]
    steps = 0
    while within > _GATHER:
        lo_key, hi_key = _key(lo), _key(hi)
        if hi_key - lo_key <= 1:  # nothing but hi fits in (lo, hi]
            return hi
        mid = lo / 2 + hi / 2
        if steps >= 64 or not lo < mid < hi:
            mid = _float((lo_key + hi_key) // 2)
        steps += 1
        p_mid = _columns(c, b, mid)
        at_most = n * m - int(p_mid.sum())
        if at_most >= rank:
            hi, p_hi, within = mid, p_mid, at_most - below
        else:
            lo, p_lo, below, within = mid, p_mid, at_most, within - (at_most - below)
    lengths = p_lo - p_hi  # row i: columns p_hi[i] .. p_lo[i] - 1 lie in (lo, hi]
    rows = np.repeat(np.arange(n), lengths)
    first = np.cumsum(lengths) - lengths
    cols = np.arange(len(rows)) - np.repeat(first - p_hi, lengths)
    found = np.sort(c[rows] - b[cols])
    return float(found[rank - below - 1])


def _columns(c: Floats, b: Floats, t: float) -> Ints:
    """Per row i, the first column j with c_i - b_j <= t (as computed in floats): the row's
    differences fall as b rises, and rounding keeps that order. searchsorted answers in real
    numbers; the rows where rounding says otherwise are moved to the exact column."""
    import numpy as np

    m = len(b)
    p: Ints = np.searchsorted(b, c - t, side="left")
    while True:
        left = p > 0
        move = left & (c - b[np.where(left, p - 1, 0)] <= t)
        if not move.any():
            break
        p = p - move
    while True:
        right = p < m
        move = right & (c - b[np.where(right, p, m - 1)] > t)
        if not move.any():
            break
        p = p + move
    return p


def _key(x: float) -> int:
    """An integer in the order of the floats (consecutive floats, consecutive integers)."""
    bits: int = struct.unpack("<q", struct.pack("<d", x))[0]
    return bits if bits >= 0 else -(bits & 0x7FFF_FFFF_FFFF_FFFF)


def _float(key: int) -> float:
    bits = key if key >= 0 else (-key) | (1 << 63)
    x: float = struct.unpack("<d", struct.pack("<Q", bits))[0]
    return x


def _without_outliers(x: Floats) -> Floats:
    if len(x) == 0:
        return x
    import numpy as np

    p1, q1, q3, p99 = (float(v) for v in np.percentile(x, [1, 25, 75, 99], method="weibull"))
    iqr = q3 - q1
    low = min(p1, q1 - OUTLIER_FACTOR * iqr)
    high = max(p99, q3 + OUTLIER_FACTOR * iqr)
    kept: Floats = x[(x >= low) & (x <= high)]
    return kept


def _summary(x: Floats) -> Summary | None:
    if len(x) == 0:
        return None
    import numpy as np

    low, q1, median, q3, high = (float(v) for v in np.percentile(x, [0, 25, 50, 75, 100]))
    return Summary(min=low, q1=q1, median=median, q3=q3, max=high)


def _wilson(events: int, total: int, z: float) -> tuple[float, float]:
    """Wilson's score interval of events/total (no continuity correction)."""
    p = events / total
    z2n = z * z / total
    centre = (p + z2n / 2) / (1 + z2n)
    half = z / (1 + z2n) * math.sqrt(p * (1 - p) / total + z2n / (4 * total))
    return max(0.0, centre - half), min(1.0, centre + half)


def _counts(events: float, total: float) -> tuple[int, int]:
    if not (math.isfinite(events) and math.isfinite(total)) or total > MAX_COUNT:
        return 0, 0
    n = max(0, round(total))
    return min(max(0, round(events)), n), n


def _p(p: float) -> float:
    """A p-value in [0, 1]; NaN (no variance at all: every sample equal) is 1."""
    return 1.0 if math.isnan(p) else min(1.0, max(0.0, p))


# -- verdicts and messages -----------------------------------------------------------------------


def _check(tolerance: float, confidence: float, min_samples: int) -> None:
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1): {confidence}")
    if not (math.isfinite(tolerance) and tolerance >= 0):
        raise ValueError(f"tolerance must be finite and >= 0: {tolerance}")
    if min_samples < 1:
        raise ValueError(f"min_samples must be >= 1: {min_samples}")


def _bad(direction: Direction, up: bool, down: bool) -> bool:
    return {"increase": up, "decrease": down, "either": up or down}[direction]


def _ratios(values: tuple[float, float, float], level: float) -> tuple[float, float, float] | None:
    """Estimate, lower and upper relative to |level|; None when the level is 0 (or so near it
    that a ratio overflows): then only absolute numbers mean anything."""
    if level == 0:
        return None
    estimate, lower, upper = (v / abs(level) for v in values)
    if not all(math.isfinite(r) for r in (estimate, lower, upper)):
        return None
    return estimate, lower, upper


def _inconclusive(
    n: int,
    m: int,
    needed: int,
    unit: str,
    removed: int,
    candidate: Summary | None,
    baseline: Summary | None,
) -> MetricResult:
    short = [f"{k} {side}" for k, side in ((n, "candidate"), (m, "baseline")) if k < needed]
    message = f"{' and '.join(short)} {unit}, {needed} needed"
    if removed:
        message += f" ({removed} outliers removed)"
    return MetricResult(
        verdict="Inconclusive",
        candidate_n=n,
        baseline_n=m,
        removed=removed,
        estimate=0.0,
        lower=0.0,
        upper=0.0,
        relative=None,
        p_value=1.0,
        candidate=candidate,
        baseline=baseline,
        message=message,
    )


def _plain(x: float) -> str:
    return f"{x:+.3g}"


def _points(x: float) -> str:
    """A difference of rates in percentage points."""
    return f"{100 * x:+.3g} pp"


def _percent(r: float) -> str:
    v = 100 * r
    return f"{v:+.1f}%" if abs(v) < 1e6 else f"{v:+.2e}%"


def _head(
    estimate: float,
    lower: float,
    upper: float,
    ratios: tuple[float, float, float] | None,
    confidence: float,
    p: float,
    absolute: Callable[[float], str],
) -> str:
    """'+31.2% (95% CI +25.0%..+37.1%), p=2.1e-09'; without a level, `absolute` numbers."""
    if ratios is None:
        shown = (absolute(estimate), absolute(lower), absolute(upper))
    else:
        shown = (_percent(ratios[0]), _percent(ratios[1]), _percent(ratios[2]))
    p_text = f"{p:.1e}" if p < 0.001 else f"{p:.2g}"
    return f"{shown[0]} ({100 * confidence:g}% CI {shown[1]}..{shown[2]}), p={p_text}"


def _tail(
    head: str,
    bad: bool,
    verdict: MetricVerdict,
    direction: Direction,
    tolerance: float,
    no_level: bool,
    confidence: float,
) -> str:
    sign = {"increase": "+", "decrease": "-", "either": "±"}[direction]
    allowed = f"the tolerance of {sign}{100 * tolerance:g}%"
    if verdict == "Fail":
        if no_level:
            return f"{head}: beyond any tolerance, from a baseline of 0"
        return f"{head}: beyond {allowed}"
    if bad:
        return f"{head}: not significant at {100 * confidence:g}%"
    return f"{head}: within {allowed}"
