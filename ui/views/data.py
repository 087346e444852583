"""Data: upload an export, map its columns, see rejected rows with reasons, run an analysis."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import pandas as pd
import streamlit as st

from analyzer.errors import InputError
from analyzer.ingest import read_table, suggest_columns
from ui.client import ApiError
from ui.common import cached_get, client, fetch, show_table

st.title("Data")
stats = fetch("/v1/stats")
if stats:
    if stats["sources"]:
        sources = pd.DataFrame(stats["sources"])
        for col in ("first", "last"):  # a source without dates shows "–"
            sources[col] = [str(v)[:10] if v else None for v in sources[col]]
        show_table(sources.rename(columns={"count": "records"}), {"records": "{:,}"})
    else:
        st.info("No records yet: upload an export below (or `civicpulse ingest FILE`).")
    if stats["reject_reasons"]:
        st.caption("Rejected rows so far, by reason")
        show_table(pd.DataFrame(stats["reject_reasons"]), {"count": "{:,}"})

st.subheader("Upload an export")
upload = st.file_uploader("CSV, Excel (.xlsx), JSON, JSON lines or Parquet (gzip ok)")
if upload is not None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / upload.name
        path.write_bytes(upload.getvalue())
        try:
            df = read_table(path)
        except InputError as exc:
            st.error(str(exc))
            st.stop()
    cols = [""] + list(df.columns)
    st.write(f"{len(df):,} rows, {len(df.columns)} columns")
    # the columns `civicpulse ingest` would read without flags (one rule: analyzer.ingest)
    guess = suggest_columns(df.head(5000))
    mapping = {
        k: st.selectbox(f"{k} column", cols, index=cols.index(v), key=f"map_{k}")
        for k, v in guess.items()
    }
    source = st.text_input("Source", value="311")
    if st.button("Load", type="primary", disabled=not mapping["text"]):
        records = []
        for row in df.to_dict("records"):
            rec = {"text": row.get(mapping["text"]) or "", "source": source}
            for key, field in (
                ("id", "id"),
                ("time", "created_at"),
                ("category", "category"),
                ("area", "area"),
            ):
                if mapping[key]:
                    rec[field] = row.get(mapping[key])
            for key in ("lat", "lon"):
                if mapping[key] and row.get(mapping[key]) not in (None, ""):
                    try:
                        rec[key] = float(row[mapping[key]])
                    except ValueError:
                        rec[key] = None
            records.append(rec)
        loaded, rejects = 0, []
        bar = st.progress(0.0, text="loading")
        for i in range(0, len(records), 500):
            try:
                out = client().post("/v1/records", {"records": records[i : i + 500]})
            except ApiError as exc:
                st.error(str(exc))
                break
            loaded += out["loaded"]
            rejects += [{**r, "index": r["index"] + i} for r in out["rejects"]]
            bar.progress(min(1.0, (i + 500) / len(records)), text=f"{loaded:,} loaded")
        st.success(f"{loaded:,} rows loaded, {len(rejects):,} rejected")
        if rejects:
            show_table(pd.DataFrame(rejects))
        cached_get.clear()

st.subheader("Analysis")
if st.button("Run an analysis"):
    try:
        run = client().post("/v1/analyze", {"refit": False})
        st.session_state["run_id"] = run["run_id"]
    except ApiError as exc:
        st.error(str(exc))
if run_id := st.session_state.get("run_id"):
    bar = st.progress(0.0, text="starting")
    for _ in range(600):
        try:
            status = client().get(f"/v1/runs/{run_id}")
        except ApiError as exc:
            st.error(str(exc))
            break
        bar.progress(float(status["progress"] or 0), text=status["message"] or status["status"])
        if status["status"] in ("done", "failed"):
            (st.success if status["status"] == "done" else st.error)(
                f"run {run_id}: {status['status']}"
            )
            cached_get.clear()
            break
        time.sleep(1)
runs = fetch("/v1/runs", limit=5)
if runs and runs["items"]:
    st.caption("Recent runs")
    show_table(
        pd.DataFrame(runs["items"])[["run_id", "status", "started_at", "finished_at", "message"]]
    )
