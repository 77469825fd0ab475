"""Canary judgement: the CPU one judgement costs (engine/judge.py `continuous` over every metric
of a Release, candidate against baseline), and its memory.

No cluster: the samples are made here (latency-like, log-normal, the candidate 2% slower), with a
fixed seed. Reported: CPU per judgement (`time.process_time()`, median and p95 over the runs),
the first import of numpy and scipy.stats apart (the operator pays it once, at its first
judgement, never when idle), the RSS that import adds, and the peak of Python allocations
(tracemalloc) during one judgement.

    .venv/bin/python bench/judge.py --metrics 5 --samples 1000 --runs 20
"""

from __future__ import annotations

import argparse
import statistics
import time
import tracemalloc
from pathlib import Path

from common import percentile
from greenlight.engine import judge


def rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--metrics", type=int, default=5, help="metrics per judgement")
    parser.add_argument("--samples", type=int, default=1000, help="samples per side and metric")
    parser.add_argument("--runs", type=int, default=20, help="judgements timed")
    args = parser.parse_args()

    rss, cpu = rss_mib(), time.process_time()
    import numpy as np
    import scipy.stats  # noqa: F401  (what the first judgement imports)

    imported, added = time.process_time() - cpu, rss_mib() - rss
    rng = np.random.default_rng(20240601)
    pairs = [
        (
            list(rng.lognormal(np.log(100) + 0.02, 0.25, args.samples)),
            list(rng.lognormal(np.log(100), 0.25, args.samples)),
        )
        for _ in range(args.metrics)
    ]

    def judgement() -> list[judge.MetricResult]:
        return [judge.continuous(c, b) for c, b in pairs]

    results = judgement()  # warm: the first call's lazy imports are counted above
    times = []
    for _ in range(args.runs):
        start = time.process_time()
        judgement()
        times.append(1000 * (time.process_time() - start))
    tracemalloc.start()
    judgement()
    peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()

    print(
        f"{args.metrics} metrics x 2 x {args.samples} samples, {args.runs} runs: "
        f"median {statistics.median(times):.1f} ms, p95 {percentile(times, 95):.1f} ms CPU per "
        f"judgement ({statistics.median(times) / args.metrics:.2f} ms per metric); "
        f"peak {peak:.1f} MiB allocated during one judgement"
    )
    print(
        f"first import of numpy and scipy.stats (not in the figures above): "
        f"{1000 * imported:.0f} ms CPU, RSS +{added:.0f} MiB"
    )
    print(f"e.g. {results[0].verdict}: {results[0].message}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
