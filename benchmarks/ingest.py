"""Ingest speed and memory on the five Boston 311 CSVs (320,770 rows), beside a plain baseline.

    nice python benchmarks/ingest.py                 # all five files, full pipeline + baseline
    nice python benchmarks/ingest.py --rows 20000    # the first 20,000 rows of each file (quick)

For every file, in one process and into a fresh temporary DuckDB store:
- civicpulse: ``analyzer.ingest.ingest_file`` (sniff, parse, validate, strip HTML, redact with
  ``analyzer.ingest.privacy.redact``, stage, de-duplicate, upsert), with the time inside the redactor measured
  separately so the cost of privacy is visible;
- baseline: ``pandas.read_csv`` + ``INSERT INTO t SELECT * FROM df`` into DuckDB, no validation,
  no redaction.
Peak memory is the process RSS sampled every 20 ms during each step (psutil). CPU seconds (all
threads of this process) are reported beside wall seconds: on a shared, loaded machine the wall
time measures the neighbours as much as the code. Prints a table and writes
benchmarks/results/ingest.json. Skips (exit 0) when ../shared/data_raw is absent.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import duckdb  # noqa: E402
import pandas as pd  # noqa: E402
import psutil  # noqa: E402

from benchmarks.common import BOSTON_FILES, require_data_raw, write_result  # noqa: E402

TARGET_SECONDS = 180.0  # issue 2: all five files, redacted, in under 3 minutes


class PeakRSS:
    """Peak resident memory of this process while the block runs (sampled in a thread)."""

    def __init__(self, interval: float = 0.02) -> None:
        self.interval = interval
        self.peak = 0
        self._stop = threading.Event()
        self._proc = psutil.Process()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._proc.memory_info().rss)
            self._stop.wait(self.interval)

    def __enter__(self) -> PeakRSS:
        self.peak = self._proc.memory_info().rss
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._proc.memory_info().rss)


class RedactionTimer:
    """Wraps analyzer.ingest.privacy.redact's functions to add up the seconds spent redacting."""

    def __init__(self) -> None:
        import analyzer.ingest.privacy.redact as privacy

        self.privacy = privacy
        self.seconds = 0.0
        self.cpu_seconds = 0.0
        self.texts = 0
        self._orig: dict[str, Callable[..., Any]] = {}

    def __enter__(self) -> RedactionTimer:
        for name in ("redact_many", "redact_address"):
            orig = getattr(self.privacy, name)
            self._orig[name] = orig

            def timed(
                *args: Any, _orig: Callable[..., Any] = orig, _name: str = name, **kw: Any
            ) -> Any:
                t, c = time.perf_counter(), time.process_time()
                try:
                    return _orig(*args, **kw)
                finally:
                    self.seconds += time.perf_counter() - t
                    self.cpu_seconds += time.process_time() - c
                    if _name == "redact_many":
                        self.texts += len(args[0]) if args else 0

            setattr(self.privacy, name, timed)
        return self

    def __exit__(self, *exc: object) -> None:
        for name, orig in self._orig.items():
            setattr(self.privacy, name, orig)


def baseline(path: Path, db: Path) -> dict[str, float]:
    with PeakRSS() as mem:
        t = time.perf_counter()
        cpu = time.process_time()
        df = pd.read_csv(path, dtype=str)
        con = duckdb.connect(str(db))
        con.execute("CREATE TABLE t AS SELECT * FROM df")
        n = con.execute("SELECT count(*) FROM t").fetchone()[0]
        con.close()
        seconds = time.perf_counter() - t
        cpu = time.process_time() - cpu
    del df
    return {
        "rows": int(n),
        "seconds": seconds,
        "cpu_seconds": cpu,
        "rows_per_s": n / seconds,
        "peak_rss_mb": mem.peak / 2**20,
    }


def civicpulse(path: Path, store: Any) -> dict[str, Any]:
    from analyzer.ingest import ingest_file

    with PeakRSS() as mem, RedactionTimer() as red:
        t = time.perf_counter()
        cpu = time.process_time()
        report = ingest_file(store, path, progress=False)
        seconds = time.perf_counter() - t
        cpu = time.process_time() - cpu
    return {
        "rows": report.rows_read,
        "loaded": report.rows_loaded,
        "rejected": report.rows_rejected,
        "rejects_by_reason": report.rejects_by_reason,
        "seconds": seconds,
        "cpu_seconds": cpu,
        "rows_per_s": report.rows_read / seconds,
        "redaction_seconds": red.seconds,
        "redaction_cpu_seconds": red.cpu_seconds,
        "texts_redacted": red.texts,
        "redacted_texts_per_s": red.texts / red.seconds if red.seconds else None,
        "peak_rss_mb": mem.peak / 2**20,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=None, help="only the first N rows of each file")
    parser.add_argument("--no-baseline", action="store_true")
    parser.add_argument("--only", choices=sorted(BOSTON_FILES), action="append", help="one service")
    args = parser.parse_args(argv)

    raw = require_data_raw("ingest") / "boston_open311"
    from analyzer.ingest.privacy.redact import redact_many
    from analyzer.store.database import Store

    t = time.perf_counter()
    # load the NER model now (it loads on the first name candidate): it is not per-file work
    redact_many(["warm-up: call Jane Doe at 617-555-0100", "Spoke with Maria Gonzalez and Peter"])
    warmup = time.perf_counter() - t

    services = args.only or list(BOSTON_FILES)
    rows_out: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="civicpulse-bench-") as tmp:
        tmpdir = Path(tmp)
        store = Store(tmpdir / "store.duckdb")
        for service in services:
            path = raw / BOSTON_FILES[service]
            if args.rows:
                part = tmpdir / path.name
                pd.read_csv(path, dtype=str, keep_default_na=False, nrows=args.rows).to_csv(
                    part, index=False
                )
                path = part
            ours = civicpulse(path, store)
            base = None if args.no_baseline else baseline(path, tmpdir / f"base-{path.stem}.duckdb")
            rows_out.append({"file": path.name, "civicpulse": ours, "baseline": base})
            b = (
                f"{base['rows_per_s']:>9,.0f} rows/s {base['peak_rss_mb']:>6,.0f} MB"
                if base
                else "-"
            )
            print(
                f"{path.name:48s} {ours['rows']:>8,} rows  civicpulse {ours['seconds']:7.1f}s "
                f"(cpu {ours['cpu_seconds']:6.1f}s) "
                f"{ours['rows_per_s']:>7,.0f} rows/s (redaction {ours['redaction_seconds']:6.1f}s, "
                f"{ours['texts_redacted']:,} texts) {ours['peak_rss_mb']:>6,.0f} MB | baseline {b}",
                flush=True,
            )
        store.close()

    total_rows = sum(r["civicpulse"]["rows"] for r in rows_out)
    total_s = sum(r["civicpulse"]["seconds"] for r in rows_out)
    total_red = sum(r["civicpulse"]["redaction_seconds"] for r in rows_out)
    total_cpu = sum(r["civicpulse"]["cpu_seconds"] for r in rows_out)
    total_red_cpu = sum(r["civicpulse"]["redaction_cpu_seconds"] for r in rows_out)
    total_texts = sum(r["civicpulse"]["texts_redacted"] for r in rows_out)
    peak = max(r["civicpulse"]["peak_rss_mb"] for r in rows_out)
    summary: dict[str, Any] = {
        "rows": total_rows,
        "seconds": total_s,
        "cpu_seconds": total_cpu,
        "rows_per_s": total_rows / total_s,
        "redaction_seconds": total_red,
        "redaction_cpu_seconds": total_red_cpu,
        "texts_redacted": total_texts,
        "redacted_texts_per_s": total_texts / total_red if total_red else None,
        "seconds_without_redaction": total_s - total_red,
        "peak_rss_mb": peak,
        "model_warmup_seconds": warmup,
        "target_seconds": TARGET_SECONDS,
        "meets_target": total_s < TARGET_SECONDS if not args.rows else None,
        "cpu_load_1min": psutil.getloadavg()[0],
    }
    if not args.no_baseline:
        bs = sum(r["baseline"]["seconds"] for r in rows_out)
        summary["baseline"] = {
            "seconds": bs,
            "cpu_seconds": sum(r["baseline"]["cpu_seconds"] for r in rows_out),
            "rows_per_s": total_rows / bs,
            "peak_rss_mb": max(r["baseline"]["peak_rss_mb"] for r in rows_out),
        }
    print(
        f"TOTAL {total_rows:,} rows: civicpulse {total_s:.1f}s "
        f"({total_rows / total_s:,.0f} rows/s; "
        f"redaction {total_red:.1f}s for {total_texts:,} distinct texts, "
        f"{summary['redacted_texts_per_s'] or 0:,.0f}/s; "
        f"everything else {total_s - total_red:.1f}s), "
        f"peak {peak:,.0f} MB"
        + (
            f" | baseline {summary['baseline']['seconds']:.1f}s "
            f"({summary['baseline']['rows_per_s']:,.0f} rows/s), peak "
            f"{summary['baseline']['peak_rss_mb']:,.0f} MB"
            if "baseline" in summary
            else ""
        )
    )
    print(
        f"CPU seconds: civicpulse {total_cpu:.1f} (redaction {total_red_cpu:.1f}, "
        f"everything else {total_cpu - total_red_cpu:.1f})"
        + (f" | baseline {summary['baseline']['cpu_seconds']:.1f}" if "baseline" in summary else "")
    )
    if not args.rows:
        verdict = "meets" if summary["meets_target"] else "MISSES"
        print(f"target: all five files in < {TARGET_SECONDS:.0f}s -> {verdict} ({total_s:.0f}s)")
    print(f"machine load (1 min): {summary['cpu_load_1min']:.1f} on {psutil.cpu_count()} CPUs")
    write_result(
        "ingest" if not args.rows else f"ingest-{args.rows}rows",
        {"files": rows_out, "summary": summary, "args": vars(args)},
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
