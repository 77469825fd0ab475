"""engine/judge.py: the statistics of canary judgement, against published worked examples, scipy's
reference outputs and brute force, and its properties (hypothesis)."""

from __future__ import annotations

import dataclasses
import math
import re
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from greenlight.engine import judge

# Hollander & Wolfe (1973), p. 69: permeability constants of the human chorioamnion at term (x)
# and at 12 to 26 weeks' gestation (y); the example of R's `wilcox.test` documentation.
HW_X = [0.80, 0.83, 1.89, 1.04, 1.45, 1.38, 1.91, 1.64, 0.73, 1.46]
HW_Y = [1.15, 0.88, 0.90, 0.74, 1.21]

PROPERTY = settings(max_examples=50, deadline=None)


def finite(result: judge.MetricResult) -> None:
    """Every float a result carries is finite (JSON, the Release's status), the p-value a
    probability, the message short."""
    floats = [result.estimate, result.lower, result.upper, result.p_value]
    floats += [] if result.relative is None else [result.relative]
    for summary in (result.candidate, result.baseline):
        floats += [] if summary is None else list(dataclasses.astuple(summary))
    assert all(isinstance(x, float) and math.isfinite(x) for x in floats), result
    assert 0.0 <= result.p_value <= 1.0
    assert result.lower <= result.estimate <= result.upper or result.verdict == "Inconclusive"
    assert 0 < len(result.message) <= 200


def brute(c: list[float], b: list[float], confidence: float) -> tuple[float, float, float]:
    """The Hodges-Lehmann estimate and interval by brute force: every difference, sorted; k by
    the normal approximation with continuity correction, computed here again."""
    d = np.sort(np.subtract.outer(np.asarray(c), np.asarray(b)).ravel())
    n, m = len(c), len(b)
    z = stats.norm.ppf(1 - (1 - confidence) / 2)
    k = max(1, int(np.floor(n * m / 2 - z * np.sqrt(n * m * (n + m + 1) / 12) + 0.5)))
    return float(np.median(d)), float(d[k - 1]), float(d[n * m - k])


# -- published worked examples -------------------------------------------------------------------


def test_mann_whitney_hollander_wolfe() -> None:
    # R 4.2.2, `wilcox.test(x, y, exact = FALSE)` on HW_X, HW_Y: "W = 35, p-value = 0.2446"
    # (normal approximation with continuity correction, two-sided); R's W is the U of x.
    u, p = judge._mann_whitney(np.array(HW_X), np.array(HW_Y))
    assert u == 35
    assert p == pytest.approx(0.2446, abs=5e-5)
    assert judge.continuous(HW_X, HW_Y, min_samples=5).p_value == p


def test_mann_whitney_tortoise_and_hare() -> None:
    # Wikipedia, "Mann-Whitney U test", Illustration of calculation methods: the tortoise and the
    # hare race 6 times each, finishing in the order T H H H H H T T T T T H; U_T = 11,
    # U_H = 25. With the finishing places as values, a tortoise's count of places *behind*
    # hares is U_H.
    tortoise, hare = [1, 7, 8, 9, 10, 11], [2, 3, 4, 5, 6, 12]
    assert judge._mann_whitney(np.array(tortoise, float), np.array(hare, float))[0] == 25
    assert judge._mann_whitney(np.array(hare, float), np.array(tortoise, float))[0] == 11


def test_hodges_lehmann_hollander_wolfe() -> None:
    # R 4.2.2, `wilcox.test(x, y, conf.int = TRUE)` on HW_X, HW_Y (exact): "95 percent
    # confidence interval: -0.15 0.76; difference in location 0.305". The normal approximation
    # of k (with its continuity correction) gives R's exact k = qwilcox(0.025, 10, 5) = 9 here.
    result = judge.continuous(HW_X, HW_Y, min_samples=5)
    assert result.estimate == pytest.approx(0.305, abs=1e-12)
    assert (result.lower, result.upper) == pytest.approx((-0.15, 0.76), abs=1e-12)
    assert result.verdict == "Pass"  # p = 0.24: not significant
    assert result.relative == pytest.approx(0.305 / 0.90)  # the baseline's median is 0.90


def test_two_proportions_openintro_mammograms() -> None:
    # OpenIntro Statistics, 3rd ed., §6.2.3: 500 of 44,925 women with mammograms and 505 of
    # 44,910 without died of breast cancer; pooled proportion 0.0112, "Z = -0.17", "p-value:
    # 0.8650". The book rounds first (-0.00012 / 0.00070): unrounded z = -0.164, p = 0.870.
    result = judge.proportion(500, 44_925, 505, 44_910)
    z = -stats.norm.isf(result.p_value / 2)  # the difference is negative
    assert z == pytest.approx(-0.17, abs=0.01)
    assert result.p_value == pytest.approx(0.8650, abs=0.01)
    assert result.estimate == pytest.approx(-0.00012, abs=5e-6)
    assert result.verdict == "Pass"


def test_two_proportions_r_prop_test() -> None:
    # R 4.2.2, `prop.test(c(15, 25), c(50, 50), correct = FALSE)`: "X-squared = 4.1667,
    # df = 1, p-value = 0.04123": the chi-square test without continuity correction is the
    # z-test (X² = z²).
    result = judge.proportion(15, 50, 25, 50, min_samples=50, direction="decrease")
    assert stats.norm.isf(result.p_value / 2) ** 2 == pytest.approx(4.1667, abs=5e-5)
    assert result.p_value == pytest.approx(0.04123, abs=5e-6)
    assert result.relative == pytest.approx(-0.4)
    assert result.verdict == "Fail"  # 40% fewer events, where fewer is bad


@pytest.mark.parametrize(
    ("counts", "interval"),
    [
        ((56, 70, 48, 80), (0.0524, 0.3339)),
        ((9, 10, 3, 10), (0.1705, 0.8090)),
        ((5, 56, 0, 29), (-0.0381, 0.1926)),
        ((10, 10, 0, 20), (0.6791, 1.0000)),
    ],
)
def test_newcombe_intervals(counts: tuple[int, int, int, int], interval: tuple[float, ...]) -> None:
    # Newcombe (1998), Statistics in Medicine 17:873-890, Table II, method 10 (the hybrid score
    # interval from Wilson's, without continuity correction), 95%.
    result = judge.proportion(*counts, min_samples=1)
    assert (result.lower, result.upper) == pytest.approx(interval, abs=5e-5)
    assert result.estimate == pytest.approx(counts[0] / counts[1] - counts[2] / counts[3])


# -- agreement with scipy and brute force ------------------------------------------------------


@pytest.mark.parametrize("seed", range(8))
def test_p_value_is_scipys(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n, m = rng.integers(5, 300, 2)
    c = rng.normal(10, 2, n).round(int(rng.integers(0, 3)))  # rounded: ties
    b = rng.normal(10.3, 2, m).round(int(rng.integers(0, 3)))
    reference = stats.mannwhitneyu(c, b, alternative="two-sided", method="asymptotic")
    result = judge.continuous(list(c), list(b), min_samples=1, outliers=False)
    assert result.p_value == pytest.approx(float(reference.pvalue), rel=1e-12)
    finite(result)


@pytest.mark.parametrize("seed", range(30))
def test_estimate_and_interval_are_the_order_statistics(
    seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Small data, every difference sorted. `_GATHER` at 1: the selection bisects all the way
    (at its default it would just sort these few differences). Ties, negative values and
    values whose differences round (1e16 + small) included."""
    monkeypatch.setattr(judge, "_GATHER", 1)
    rng = np.random.default_rng(seed)
    n, m = (int(v) for v in rng.integers(1, 60, 2))
    c, b = [
        [
            rng.normal(0, 3, k),
            rng.integers(-3, 4, k).astype(float),
            1e16 + rng.integers(0, 50, k) * 2.0,
        ][seed % 3]
        for k in (n, m)
    ]
    confidence = [0.8, 0.9, 0.95, 0.99][seed % 4]
    got = judge._hodges_lehmann(np.sort(c), np.sort(b), confidence)
    assert got == brute(list(c), list(b), confidence)
    assert got[0] == np.median(np.subtract.outer(c, b))


def test_order_statistics_of_a_million_differences() -> None:
    rng = np.random.default_rng(7)
    c, b = rng.lognormal(4.6, 0.3, 1000), rng.lognormal(4.6, 0.3, 1000).round(1)
    assert judge._hodges_lehmann(np.sort(c), np.sort(b), 0.95) == brute(list(c), list(b), 0.95)


# -- behaviour -----------------------------------------------------------------------------------


def test_a_slower_candidate_fails() -> None:
    rng = np.random.default_rng(1)
    baseline = rng.normal(100, 5, 500)
    candidate = rng.normal(131, 5, 500)
    result = judge.continuous(list(candidate), list(baseline))
    assert result.verdict == "Fail"
    assert re.fullmatch(
        r"\+3\d\.\d% \(95% CI \+\d\d\.\d%\.\.\+\d\d\.\d%\), p=\d\.\de-\d+: "
        r"beyond the tolerance of \+10%",
        result.message,
    ), result.message
    assert result.relative == pytest.approx(0.31, abs=0.02)
    assert judge.continuous(list(candidate), list(baseline), direction="decrease").verdict == (
        "Pass"
    )
    assert judge.continuous(list(candidate), list(baseline), direction="either").verdict == "Fail"
    assert judge.continuous(list(candidate), list(baseline), tolerance=0.5).verdict == "Pass"
    finite(result)


def test_a_small_significant_change_is_within_the_tolerance() -> None:
    rng = np.random.default_rng(2)
    baseline = rng.normal(100, 5, 2000)
    result = judge.continuous(list(baseline * 1.02), list(baseline))
    assert result.p_value < 0.05
    assert result.verdict == "Pass"
    assert result.message.endswith("within the tolerance of +10%"), result.message


def test_a_baseline_median_of_zero() -> None:
    """Any significant move away from 0 in the bad direction is beyond a relative tolerance;
    the message then gives absolute numbers."""
    rng = np.random.default_rng(3)
    baseline = [0.0] * 40 + list(rng.normal(0, 1, 41))
    candidate = list(rng.normal(2, 1, 80))
    result = judge.continuous(candidate, baseline, outliers=False)
    assert result.relative is None
    assert result.verdict == "Fail"
    assert re.match(r"\+\d\.\d+ \(95% CI \+\d\.\d+\.\.\+\d\.\d+\), p=", result.message)
    assert result.message.endswith("beyond any tolerance, from a baseline of 0"), result.message
    assert judge.continuous(candidate, baseline, direction="decrease").verdict == "Pass"
    finite(result)


def test_too_few_samples() -> None:
    result = judge.continuous([1.0] * 12, [1.0] * 30)
    assert result.verdict == "Inconclusive"
    assert result.message == "12 candidate samples, 20 needed"
    assert (result.candidate_n, result.baseline_n) == (12, 30)
    both = judge.continuous([1.0, math.nan, math.inf], [])
    assert both.message == "1 candidate and 0 baseline samples, 20 needed"
    assert both.baseline is None and both.candidate == judge.Summary(1.0, 1.0, 1.0, 1.0, 1.0)
    finite(both)


def test_outliers_are_removed_as_kayenta_does() -> None:
    rng = np.random.default_rng(4)
    baseline = list(rng.normal(100, 5, 300))
    candidate = [*rng.normal(100, 5, 299), 1e6]  # one stuck sample
    result = judge.continuous(candidate, baseline)
    assert result.removed >= 1
    assert result.candidate is not None and result.candidate.max < 200
    assert result.verdict == "Pass"
    kept = judge.continuous(candidate, baseline, outliers=False)
    assert kept.removed == 0 and kept.candidate is not None and kept.candidate.max == 1e6
    # Below 100 samples the 99th percentile is the largest sample: Kayenta removes nothing.
    assert judge.continuous(candidate[-50:], baseline[:50]).removed == 0


def test_samples_that_are_not_measurements_are_dropped() -> None:
    samples = [1.0, 2.0, 3.0] * 10
    result = judge.continuous([*samples, math.nan, -math.inf, 1e300], samples)
    assert result.candidate_n == 30
    assert result.verdict == "Pass" and result.p_value == 1.0 and result.estimate == 0.0


def test_a_rate_from_zero() -> None:
    result = judge.proportion(12, 1000, 0, 1000)
    assert result.verdict == "Fail"
    assert result.relative is None
    assert result.estimate == pytest.approx(0.012)
    assert result.message.endswith("beyond any tolerance, from a baseline of 0"), result.message
    assert "pp" in result.message
    finite(result)
    assert judge.proportion(0, 1000, 12, 1000).verdict == "Pass"  # fewer errors
    assert judge.proportion(0, 1000, 12, 1000, direction="decrease").verdict == "Fail"


def test_no_variance_between_proportions() -> None:
    for events in (0, 500):
        result = judge.proportion(events, 500, events * 2, 1000)
        assert result.verdict == "Pass"
        assert (result.p_value, result.estimate, result.lower, result.upper) == (1, 0, 0, 0)
        finite(result)


def test_counts_are_rounded_and_clamped() -> None:
    result = judge.proportion(10.6, 119.7, -3.2, 120.4)
    assert (result.candidate_n, result.baseline_n) == (120, 120)
    assert result.estimate == pytest.approx(11 / 120)
    over = judge.proportion(150.0, 120.0, 1.0, 120.0)
    assert over.estimate == pytest.approx(1 - 1 / 120)
    unknown = judge.proportion(math.nan, 1000, 0, 1000)
    assert unknown.verdict == "Inconclusive"
    assert unknown.message == "0 candidate trials, 100 needed"


def test_bad_arguments() -> None:
    with pytest.raises(ValueError):
        judge.continuous([1.0], [1.0], confidence=1.0)
    with pytest.raises(ValueError):
        judge.proportion(1, 2, 1, 2, tolerance=-0.1)
    with pytest.raises(ValueError):
        judge.score([])
    with pytest.raises(ValueError):
        judge.score([(verdict("Pass"), 0.0)])


def verdict(v: judge.MetricVerdict) -> judge.MetricResult:
    return judge.MetricResult(v, 100, 100, 0, 0.0, 0.0, 0.0, None, 1.0, None, None, v)


def test_score() -> None:
    p, f, i = verdict("Pass"), verdict("Fail"), verdict("Inconclusive")
    assert judge.score([(p, 1), (p, 3)]) == ("Successful", 100.0)
    assert judge.score([(p, 19), (f, 1)]) == ("Successful", 95.0)
    assert judge.score([(p, 3), (f, 1)]) == ("Inconclusive", 75.0)
    assert judge.score([(p, 2), (f, 1)]) == ("Failed", 66.7)
    assert judge.score([(p, 1), (i, 1)]) == ("Inconclusive", 50.0)
    assert judge.score([(p, 1), (f, 0)]) == ("Successful", 100.0)
    assert judge.score([(p, 1), (f, 1)], pass_score=50) == ("Successful", 50.0)


def test_the_statistics_are_imported_only_by_a_judgement() -> None:
    """The operator's idle memory: importing the module loads neither numpy nor scipy."""
    probe = (
        "import sys, greenlight.engine.judge as j; "
        "assert not {'numpy', 'scipy'} & set(sys.modules), sorted(sys.modules); "
        "j.score([(j.MetricResult('Pass', 1, 1, 0, 0., 0., 0., None, 1., None, None, ''), 1)]); "
        "assert not {'numpy', 'scipy'} & set(sys.modules); "
        "j.proportion(1, 100, 2, 100); assert 'scipy' in sys.modules"
    )
    subprocess.run([sys.executable, "-c", probe], check=True)


# -- properties ----------------------------------------------------------------------------------

sample = st.floats(allow_nan=True, allow_infinity=True, width=64)
measured = st.floats(-1e6, 1e6)


@PROPERTY
@given(
    st.lists(sample, max_size=60),
    st.integers(1, 40),
    st.sampled_from(["increase", "decrease", "either"]),
    st.booleans(),
)
def test_identical_samples_never_fail(
    samples: list[float], min_samples: int, direction: judge.Direction, outliers: bool
) -> None:
    result = judge.continuous(
        samples, list(samples), direction=direction, min_samples=min_samples, outliers=outliers
    )
    finite(result)
    if result.candidate_n >= min_samples:
        assert result.verdict == "Pass"
        assert (result.p_value, result.estimate) == (1.0, 0.0)
    else:
        assert result.verdict == "Inconclusive"


@PROPERTY
@given(st.integers(0, 2**32 - 1), st.integers(50, 300))
def test_half_again_slower_fails(seed: int, n: int) -> None:
    baseline = np.random.default_rng(seed).normal(100, 5, n)
    candidate, base = list(baseline * 1.5), list(baseline)
    result = judge.continuous(candidate, base)
    assert result.verdict == "Fail", result.message
    assert judge.continuous(candidate, base, direction="either").verdict == "Fail"
    assert judge.continuous(candidate, base, direction="decrease").verdict == "Pass"
    finite(result)


@PROPERTY
@given(
    st.integers(1, 50).flatmap(lambda k: st.tuples(st.just(k), st.integers(0, k - 1))), st.data()
)
def test_too_few_is_inconclusive(needed_short: tuple[int, int], data: st.DataObject) -> None:
    needed, short = needed_short
    few = data.draw(st.lists(measured, min_size=short, max_size=short))
    many = data.draw(st.lists(measured, min_size=needed, max_size=needed + 20))
    sides = (few, many) if data.draw(st.booleans()) else (many, few)
    result = judge.continuous(*sides, min_samples=needed)
    assert result.verdict == "Inconclusive"
    assert str(needed) in result.message
    finite(result)
    trials = judge.proportion(0, short, 5, needed * 10, min_samples=needed)
    assert trials.verdict == "Inconclusive"


@PROPERTY
@given(st.lists(measured, max_size=80), st.lists(measured, max_size=80), st.integers(1, 30))
def test_any_samples_give_finite_numbers(c: list[float], b: list[float], needed: int) -> None:
    finite(judge.continuous(c, b, min_samples=needed))


@PROPERTY
@given(
    st.floats(allow_nan=True, allow_infinity=True),
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(100, 10**7),
    st.sampled_from(["increase", "decrease", "either"]),
)
def test_a_zero_error_baseline_gives_finite_numbers(
    events: float, total: float, baseline_total: int, direction: judge.Direction
) -> None:
    result = judge.proportion(events, total, 0, baseline_total, direction=direction)
    finite(result)
    assert result.relative is None


@PROPERTY
@given(
    st.lists(st.tuples(st.sampled_from(["Pass", "Fail"]), st.floats(0.1, 100)), min_size=1),
    st.data(),
)
def test_more_passing_weight_never_worsens_the_score(
    metrics: list[tuple[judge.MetricVerdict, float]], data: st.DataObject
) -> None:
    rank = {"Failed": 0, "Inconclusive": 1, "Successful": 2}
    before = judge.score([(verdict(v), w) for v, w in metrics])
    flipped = data.draw(st.integers(0, len(metrics) - 1))
    after = judge.score(
        [(verdict("Pass" if i == flipped else v), w) for i, (v, w) in enumerate(metrics)]
    )
    assert after[1] >= before[1]
    assert rank[after[0]] >= rank[before[0]]
    assert 0 <= before[1] <= 100
