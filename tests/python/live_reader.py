"""Polls a run folder while minima writes it, with every read docs/RESULTS.md
documents for a live folder (polars read and scan over the part files, DuckDB over
their glob) and, once they exist, the whole files; checks that each read is a
whole, consistent prefix of the script's runs. Stops when config.json has a final
status. Prints a JSON report: reads per method, failures, prefixes seen.

usage: live_reader.py RUN_FOLDER EPOCHS_PER_RUN RUNS_EXPECTED
"""

import glob
import json
import os
import sys
import time

import duckdb
import polars as pl

folder, epochs, runs_expected = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
report = {"reads": {}, "failures": [], "prefixes": []}


# The documented reads (docs/RESULTS.md, "Reading a live folder").
def parts(table):
    return sorted(glob.glob(f"{folder}/{table}/*.parquet"))


def polars_read(table):
    return pl.concat([pl.read_parquet(f) for f in parts(table)], how="diagonal_relaxed")


def polars_scan(table):
    return pl.concat([pl.scan_parquet(f) for f in parts(table)], how="diagonal_relaxed").collect()


def duckdb_frame(sql):
    # Columns and rows from one execution: a relation (duckdb.sql) expands its
    # glob again each time it runs, so a later part may add a column in between.
    cursor = duckdb.execute(sql)
    columns = [d[0] for d in cursor.description]
    return pl.DataFrame(cursor.fetchall(), schema=columns, orient="row", infer_schema_length=None)


def duckdb_glob(table):
    # DuckDB expands the glob itself; the part files only ever grow in number.
    return duckdb_frame(f"SELECT * FROM read_parquet('{folder}/{table}/*.parquet', union_by_name=true)")


def whole_polars(table):
    return pl.read_parquet(f"{folder}/{table}.parquet")


def whole_scan(table):
    return pl.scan_parquet(f"{folder}/{table}.parquet").collect()


def whole_duckdb(table):
    return duckdb_frame(f"SELECT * FROM '{folder}/{table}.parquet'")


def fail(method, what):
    report["failures"].append(f"{method}: {what}")


def runs_of(df, column="run"):
    return sorted(int(r) for r in df[column].to_list())


def check(method, summary, history, metrics):
    """summary was read first, then history, then metrics: history and metrics may
    hold runs recorded after the summary was read, never fewer."""
    runs = runs_of(summary)
    k = len(runs)
    if runs != list(range(k)):
        return fail(method, f"summary runs are not 0..{k}: {runs}")
    per_run = {}
    for run, epoch in zip(history["run"].to_list(), history["epoch"].to_list()):
        per_run.setdefault(int(run), []).append(int(epoch))
    m = len(per_run)
    if sorted(per_run) != list(range(m)) or m < k:
        return fail(method, f"history runs {sorted(per_run)} are not 0..m with m >= {k}")
    for run, seen in per_run.items():
        if sorted(seen) != list(range(1, epochs + 1)):
            return fail(method, f"run {run} has epochs {seen}, not 1..{epochs}")
    for row in summary.select("run", "score", *(["late"] if "late" in summary.columns else [])).iter_rows(named=True):
        run = row["run"]
        want = run if run % 2 == 0 else run + 0.5
        if row["score"] != want:
            return fail(method, f"run {run} score {row['score']!r}, not {want}")
        if row.get("late") != ("yes" if run >= 3 else None):
            return fail(method, f"run {run} late {row.get('late')!r}")
    if k > 3 and "late" not in summary.columns:
        return fail(method, "no `late` column though runs 3.. carry it")
    if m > 5:
        if "frobenius" not in history.columns:
            return fail(method, "no `frobenius` column though runs 5.. track norms")
        tracked = history.filter(pl.col("run") >= 5)["frobenius"]
        if tracked.null_count() != 0 or history.filter(pl.col("run") < 5)["frobenius"].null_count() != 5 * epochs:
            return fail(method, "frobenius is not exactly on the runs that track it")
    j = len(runs_of(metrics, "of_run")) if metrics is not None else 0
    if metrics is not None and runs_of(metrics, "of_run") != list(range(j)):
        return fail(method, f"metrics runs are not 0..{j}")
    # Each run's metrics are recorded just after the run itself.
    if j < k - 1:
        return fail(method, f"metrics of {j} runs, read after a summary of {k}")
    report["prefixes"].append([method, k])


def attempt(method, read, tables):
    report["reads"][method] = report["reads"].get(method, 0) + 1
    try:
        # A table nothing was recorded to yet has no files: not read (documented).
        frames = [read(t) if t == "summary" or parts(t) else None for t in tables]
    except Exception as e:  # every failure is reported, none retried
        return fail(method, f"{type(e).__name__}: {e}")
    check(method, *frames)


def status():
    try:
        with open(f"{folder}/config.json") as f:
            return json.load(f)["status"]
    except FileNotFoundError:
        return None


deadline = time.monotonic() + 240
tables = ["summary", "history", "metrics"]
while True:
    final = status() not in (None, "running")
    # No part yet: no read is documented to succeed before the first record.
    if parts("summary"):
        attempt("polars read_parquet of parts", polars_read, tables)
        attempt("polars scan_parquet of parts", polars_scan, tables)
        attempt("duckdb read_parquet glob", duckdb_glob, tables)
    # The whole files appear at the end, summary.parquet last.
    if os.path.exists(f"{folder}/summary.parquet"):
        attempt("polars read_parquet of whole files", whole_polars, tables)
        attempt("polars scan_parquet of whole files", whole_scan, tables)
        attempt("duckdb of whole files", whole_duckdb, tables)
    if final:
        report["status"] = status()
        break
    if time.monotonic() > deadline:
        fail("poller", "no final status in config.json within 240 s")
        break

final_runs = [k for method, k in report["prefixes"] if "whole" in method]
if final_runs and set(final_runs) != {runs_expected}:
    fail("whole files", f"hold {sorted(set(final_runs))} runs, not {runs_expected}")
print(json.dumps(report))
