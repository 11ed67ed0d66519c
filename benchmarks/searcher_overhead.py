"""Each searcher's own cost per query: ask + tell, at 1,000 queries on NB201, one thread.

The table lookup costs microseconds, so a 1,000-query tabular search measures the searcher
itself (its sampling and model updates). Every searcher runs one seeded 1,000-query search on
cifar10-valid; each ask and each tell is timed; the median and the 90th percentile per query,
and the total, are reported. Meta-learners are timed from a (briefly) meta-trained state: the
meta-training is not timed.

With ``--baseline REF`` the same measurement runs first on the library as it was at git ref
``REF`` (its ``src/`` extracted to a temporary folder, measured in a child process with that
on ``PYTHONPATH``), and the table gets before / after / ratio columns — the same script, the
same machine, one run.

    .venv/bin/python benchmarks/searcher_overhead.py [--baseline <git ref>] [--queries 1000]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import time
from io import BytesIO
from pathlib import Path

import numpy as np
import pandas as pd
import torch

ROOT = Path(__file__).resolve().parents[1]
RAW = ROOT / "data/01_raw/nb201"
OUT = ROOT / "benchmarks/results"


def measure(methods: list[str], queries: int, seed: int) -> dict[str, dict[str, float]]:
    """Per method: median / p90 ms per query (ask + tell) and the total seconds."""
    from transfernas.benchmark import NB201BenchmarkConfig, meta_train_for
    from transfernas.search import run_search
    from transfernas.searchers import SEARCHERS, make_searcher
    from transfernas.tasks.tabular import NB201Table, TabularTask

    torch.set_num_threads(1)
    table = NB201Table.from_frame(pd.read_parquet(RAW / "nb201_12epoch.parquet"))
    config = NB201BenchmarkConfig(methods=methods, meta={"n_epochs": 2, "n_search": 20})
    out = {}
    for method in methods:
        task = TabularTask(table, "cifar10-valid")
        searcher = make_searcher(method, task.space, config.searcher_config(method), seed)
        if SEARCHERS[method].meta_trained:
            searcher.load_network_state(meta_train_for(table, config, method, "cifar10-valid"))
        per_query = _time_each_query(searcher)
        start = time.perf_counter()
        run_search(task.space, task, searcher, queries)
        total = time.perf_counter() - start
        ms = np.array(per_query) * 1000
        out[method] = {
            "median_ms": round(float(np.median(ms)), 3),
            "mean_ms": round(float(ms.mean()), 3),
            "p90_ms": round(float(np.percentile(ms, 90)), 3),
            "last100_median_ms": round(float(np.median(ms[-100:])), 3),
            "total_s": round(total, 2),
        }
        print(method, out[method], flush=True)
    return out


def _time_each_query(searcher) -> list[float]:
    """Wrap ``searcher``'s ask and tell; the returned list gets each query's seconds."""
    per_query: list[float] = []
    ask, tell = searcher.ask, searcher.tell

    def timed_ask(n: int = 1):
        start = time.perf_counter()
        result = ask(n)
        per_query.append(time.perf_counter() - start)
        return result

    def timed_tell(candidates, rewards):
        start = time.perf_counter()
        tell(candidates, rewards)
        per_query[-1] += time.perf_counter() - start

    searcher.ask, searcher.tell = timed_ask, timed_tell
    return per_query


def baseline(ref: str, methods: list[str], queries: int, seed: int) -> dict[str, dict[str, float]]:
    """The same measurement on ``src/`` at git ``ref``, in a child process."""
    archive = subprocess.run(
        ["git", "archive", "--format=tar", ref, "src"], cwd=ROOT, capture_output=True, check=True
    ).stdout
    with tempfile.TemporaryDirectory() as tmp:
        with tarfile.open(fileobj=BytesIO(archive)) as tar:
            tar.extractall(tmp, filter="data")
        result = Path(tmp) / "result.json"
        env = os.environ | {"PYTHONPATH": str(Path(tmp) / "src")}
        code = (
            "import json, sys; sys.path.insert(0, sys.argv[1]); "
            "from searcher_overhead import measure; "
            "json.dump(measure(sys.argv[2].split(','), int(sys.argv[3]), int(sys.argv[4])), "
            "open(sys.argv[5], 'w'))"
        )
        args = [str(Path(__file__).parent), ",".join(methods), str(queries), str(seed)]
        subprocess.run([sys.executable, "-c", code, *args, str(result)], env=env, check=True)
        return json.loads(result.read_text())


def main() -> None:
    from _results import write_results

    from transfernas.searchers import SEARCHERS

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", nargs="+", default=list(SEARCHERS), choices=list(SEARCHERS))
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--baseline", help="git ref of the library to compare with")
    parser.add_argument("--target-ms", type=float, default=3.0)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()

    before = (
        baseline(args.baseline, args.methods, args.queries, args.seed) if args.baseline else None
    )
    after = measure(args.methods, args.queries, args.seed)
    rows = []
    for method in args.methods:
        row = {"method": method, **{f"{k}": v for k, v in after[method].items()}}
        if before is not None:
            row |= {
                "before_median_ms": before[method]["median_ms"],
                "speedup": round(before[method]["median_ms"] / after[method]["median_ms"], 2),
            }
        # a searcher that works in rounds (PNAS expands a beam every few queries) has a tiny
        # median and a large mean: both must be within the target
        row["within_target"] = max(after[method]["median_ms"], after[method]["mean_ms"]) <= (
            args.target_ms
        )
        rows.append(row)
    frame = pd.DataFrame(rows)
    payload = {
        "queries": args.queries,
        "seed": args.seed,
        "threads": 1,
        "baseline": args.baseline,
        "target_ms": args.target_ms,
        "results": rows,
    }
    md = (
        f"# Searcher overhead per query ({args.queries} queries, NB201 cifar10-valid, 1 thread)\n\n"
        f"{frame.to_markdown(index=False)}\n\n"
        "ask + tell per query, table lookup excluded; median and mean over the queries, p90, "
        "the median of the last 100 (the searchers' models grow with the history), total wall "
        f"seconds. Target: median and mean ≤ {args.target_ms:g} ms.\n"
    )
    write_results(args.out, "searcher_overhead", payload, md)
    print(md)


if __name__ == "__main__":
    main()
