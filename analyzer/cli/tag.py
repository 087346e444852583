"""``civicpulse tag``: train a tagger bundle, tag a file with it, record a correction."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import pandas as pd
import typer

from analyzer.cli import app
from analyzer.cli.common import (
    console,
    open_store,
    read_input_table,
    resolve_column,
    settings,
    texts_of,
    write_output_table,
)
from analyzer.common.hashing import sha256_file
from analyzer.errors import InputError

tag_app = typer.Typer(
    help="Tag requests with the city's categories: train, predict, correct.",
    no_args_is_help=True,
)
app.add_typer(tag_app, name="tag")

InputOpt = Annotated[
    Path, typer.Option("--input", "-i", help="input file (CSV, JSON, Parquet; .gz ok)")
]
TextCol = Annotated[str, typer.Option("--text-col", help="column holding the request text")]
StoreOpt = Annotated[
    Path | None, typer.Option("--store", help="DuckDB store (default from settings)")
]
ExtraCols = Annotated[
    list[str] | None,
    typer.Option("--extra-col", help="categorical column to use besides the text (repeatable)"),
]

OUTPUT_COLUMNS = (
    "predicted_label",
    "confidence",
    "needs_review",
    "alternatives",
    "possible_new_category",
)


def _embedder_settings() -> tuple[str, str]:
    s = settings()
    return s.embed_model, s.embed_backend


def _evaluate(
    tagger: Any, texts: list[str], labels: np.ndarray, emb: np.ndarray, extra: pd.DataFrame | None
) -> dict[str, Any]:
    """Macro-F1, accuracy, ECE before/after and the auto-accept share on held-out rows."""
    from sklearn.metrics import accuracy_score, f1_score

    from analyzer.tagging.supervised import expected_calibration_error

    known = np.isin(labels, tagger.classes_)
    texts = [t for t, k in zip(texts, known, strict=True) if k]
    labels, emb = labels[known], emb[known]
    extra = None if extra is None else extra[known]
    y = np.searchsorted(tagger.classes_, labels)
    raw = tagger.predict_proba(texts, extra=extra, embeddings=emb, calibrated=False)
    rows = tagger.predict_detailed(texts, extra=extra, embeddings=emb)
    pred = np.array([r["predicted_label"] for r in rows], dtype=object)
    accepted = ~np.array([r["needs_review"] for r in rows], dtype=bool)
    correct = pred == labels
    return {
        "macro_f1": float(f1_score(labels, pred, average="macro")),
        "accuracy": float(accuracy_score(labels, pred)),
        "ece_before": expected_calibration_error(raw, y),
        "ece_after": expected_calibration_error(
            tagger.predict_proba(texts, extra=extra, embeddings=emb), y
        ),
        "auto_accept_share": float(accepted.mean()),
        "auto_accept_precision": float(correct[accepted].mean()) if accepted.any() else None,
        "n_rows": len(labels),
    }


def _print_metrics(title: str, m: dict[str, Any]) -> None:
    precision = m.get("auto_accept_precision")
    console.print(
        f"{title}: macro-F1 {m['macro_f1']:.3f}  accuracy {m['accuracy']:.3f}  "
        f"ECE {m['ece_before']:.3f} -> {m['ece_after']:.3f}  "
        f"auto-accepted {m['auto_accept_share']:.1%}"
        + (f" at precision {precision:.3f}" if precision is not None else "")
        + (
            f"  ({m['n_validation_rows']} of {m['n_rows']} rows validated)"
            if "n_validation_rows" in m
            else f"  ({m['n_rows']} rows)"
        )
        + (
            f"; category names as a prior, weight {m['label_prior']:g}"
            if m.get("label_prior")
            else ""
        )
    )


def _load_embeddings(path: Path, n_rows: int) -> np.ndarray:
    from analyzer.embedding import EMBED_DIM

    try:
        arr = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise InputError(f"not a NumPy .npy array: {exc}", file=str(path)) from None
    if arr.ndim != 2 or arr.shape[0] != n_rows or arr.shape[1] != EMBED_DIM:
        raise InputError(
            f"shape {arr.shape}; expected ({n_rows}, {EMBED_DIM}): one row per input row",
            file=str(path),
        )
    return arr.astype(np.float32, copy=False)


@tag_app.command("train")
def train(
    input: InputOpt,
    text_col: TextCol,
    label_col: Annotated[
        str, typer.Option("--label-col", help="column holding the right category")
    ],
    out: Annotated[Path, typer.Option("--out", help="bundle folder to write, e.g. models/NAME")],
    time_col: Annotated[
        str | None,
        typer.Option(
            "--time-col",
            help="request time; adds a train-on-past, test-on-later check (default: the column "
            "whose name and values say it, else the file's row order)",
        ),
    ] = None,
    date_format: Annotated[
        str | None,
        typer.Option(
            "--date-format",
            help="strftime of --time-col's day/month dates when they cannot tell, e.g. '%d/%m/%Y'",
        ),
    ] = None,
    no_time: Annotated[
        bool,
        typer.Option(
            "--no-time",
            help="validate on shuffled rows even when a column's name and values say when each "
            "request was made (by default that column is found and used as --time-col is)",
        ),
    ] = False,
    per_label_time: Annotated[
        bool,
        typer.Option(
            "--per-label-time",
            help="validate on each category's own later rows, for a history joined from "
            "per-service extracts of different years (default: the later requests as they came)",
        ),
    ] = False,
    keep_boilerplate: Annotated[
        bool,
        typer.Option("--keep-boilerplate", help="also learn from placeholder and repeated texts"),
    ] = False,
    min_examples: Annotated[
        int,
        typer.Option(
            "--min-examples",
            min=2,
            help="categories with fewer labelled rows are folded into 'Other' (with a warning)",
        ),
    ] = 2,
    drop_rare: Annotated[
        bool,
        typer.Option("--drop-rare", help="leave rare categories out instead of folding them"),
    ] = False,
    extra_col: ExtraCols = None,
    target_precision: Annotated[
        float, typer.Option(help="precision auto-accepted tags must reach on validation data")
    ] = 0.95,
    with_corrections: Annotated[
        bool, typer.Option("--with-corrections", help="include corrections stored in the store")
    ] = False,
    correction_weight: Annotated[float, typer.Option(help="weight of a stored correction")] = 5.0,
    store: StoreOpt = None,
    embeddings: Annotated[
        Path | None,
        typer.Option(
            "--embeddings",
            help="the input's embeddings as written by `civicpulse embed` (.npy, one row per "
            "input row), to skip embedding again",
        ),
    ] = None,
) -> None:
    """Write a tagger bundle; print cross-validated metrics, and a train-on-past, test-on-later
    check when the file says when each request was made (--time-col, or a column found by its
    name and values)."""
    from analyzer.embedding.embedder import get_embedder
    from analyzer.tagging.corrections import load_corrections, merge_corrections
    from analyzer.tagging.measures import NEVER_ACCEPT
    from analyzer.tagging.supervised import Tagger, time_split, training_data_hash

    if with_corrections and extra_col:
        raise InputError("--with-corrections cannot be combined with --extra-col")
    if not 0.5 <= target_precision < 1.0:
        raise InputError(f"--target-precision must be in [0.5, 1), got {target_precision}")
    from analyzer.ingest.dates import parse_time_column
    from analyzer.tagging.inputs import file_order_times, training_rows

    df = read_input_table(input, text_col)
    label_col = resolve_column(df, label_col, input)
    time_col = resolve_column(df, time_col, input) if time_col else None
    extra_col = [resolve_column(df, c, input) for c in extra_col or []]
    texts = texts_of(df, text_col)
    labels = df[label_col].fillna("").astype(str).str.strip().to_numpy(dtype=object)
    chosen = training_rows(
        texts,
        labels,
        keep_boilerplate=keep_boilerplate,
        min_examples=min_examples,
        other=None if drop_rare else "Other",
    )
    keep = chosen.keep
    labels = chosen.labels if chosen.labels is not None else labels
    given = _load_embeddings(embeddings, len(df)) if embeddings else None
    for note in chosen.notes():
        console.print(note)
    rows_in_file = np.flatnonzero(keep) + 1
    df = df.loc[keep].reset_index(drop=True)
    texts = [t for t, k in zip(texts, keep, strict=True) if k]
    labels = labels[keep]
    if len(texts) < 10:
        raise InputError(
            f"only {len(texts)} labelled rows; training needs at least 10", file=str(input)
        )
    extra = df[extra_col].astype(str) if extra_col else None
    times = None
    if time_col is None and not no_time:
        from analyzer.ingest.time_columns import find_time_column

        found = find_time_column(
            df,
            exclude=[text_col, label_col, *extra_col],
            date_format=date_format,
            file=str(input),
            rows=rows_in_file,
        )
        for note in found.passed_over:
            console.print(f"not validated on {note}")
        if found.column is not None and found.times is not None and found.format is not None:
            time_col, times = found.column, found.times
            console.print(
                f"times in {time_col!r} (found by its name; --time-col names another, --no-time "
                f"validates on shuffled rows): {found.format.description}"
                + (
                    f"; {found.missing:,} rows without a time count as the oldest"
                    if found.missing
                    else ""
                )
            )
        if times is None and (order := file_order_times(labels)) is not None:
            times = order
            console.print(
                "no time column: validated on the rows in the file's order, the later rows as the "
                "later requests (--time-col names one, --no-time validates on shuffled rows)"
            )
    elif time_col:
        # the one date parser ingest uses: formats detected over the column, Unix times too
        times, fmt = parse_time_column(
            df[time_col],
            column=time_col,
            date_format=date_format,
            file=str(input),
            rows=rows_in_file,
        )
        console.print(f"times in {time_col!r}: {fmt.description}")

    model, backend = _embedder_settings()
    embedder = get_embedder(model or None, backend=backend)
    if given is not None:
        emb = given[keep]
    else:
        console.print(f"embedding {len(texts)} texts with {embedder.model_id}")
        emb = embedder.embed(texts, progress=True)
    params = {
        "target_precision": target_precision,
        "embed_model": model,
        "embed_backend": backend,
        "time_per_label": per_label_time,
    }
    metrics: dict[str, Any] = {}

    if times is not None:
        past, later = time_split(labels, times, per_label=per_label_time)
        counts = pd.Series(labels[past]).value_counts()
        # a label with fewer than two past rows cannot be learnt from the past: checked without it
        usable = np.isin(labels, counts[counts >= 2].index.to_numpy())
        past &= usable
        later &= usable
        if (counts >= 2).sum() >= 2 and later.any():
            held = Tagger(**params).fit(
                [t for t, p in zip(texts, past, strict=True) if p],
                labels[past],
                extra=None if extra is None else extra[past].reset_index(drop=True),
                embeddings=emb[past],
                times=times[past],
            )
            later_texts = [t for t, q in zip(texts, later, strict=True) if q]
            later_extra = None if extra is None else extra[later].reset_index(drop=True)
            metrics["time_split"] = {
                "validation": ("per-label " if per_label_time else "")
                + "time split: past 80% trains, later 20% tests",
                **_evaluate(held, later_texts, labels[later], emb[later], later_extra),
            }
            _print_metrics("time split (train past, test later)", metrics["time_split"])
        else:
            console.print("time split skipped: too few past rows for some label")

    corr = pd.DataFrame()
    if with_corrections:
        with open_store(store, read_only=True) as st:
            corr = load_corrections(st)
        console.print(f"including {len(corr)} stored corrections (weight {correction_weight})")
    merged = merge_corrections(
        texts,
        list(labels),
        corr,
        correction_weight=correction_weight,
        embeddings=emb,
        embed=embedder.embed,
        times=times,
    )
    train_texts, train_labels, train_times = merged.texts, merged.labels, merged.times
    emb, weight = merged.embeddings, merged.weight

    tagger = Tagger(**params).fit(
        train_texts,
        train_labels,
        extra=extra,
        embeddings=emb,
        sample_weight=weight,
        times=None if train_times is None else train_times.to_numpy(),
    )
    _print_metrics(f"validated ({tagger.metrics_['validation']})", tagger.metrics_)
    metrics["input"] = {"file": input.name, "sha256": sha256_file(input), "rows_used": len(texts)}
    tagger.save(
        out,
        metrics=metrics,
        training_data_hash=training_data_hash(train_texts, train_labels),
        notes=f"civicpulse tag train --input {input.name} --text-col {text_col} "
        f"--label-col {label_col}" + (f" --time-col {time_col}" if time_col else ""),
    )
    if tagger.threshold_ >= NEVER_ACCEPT:
        more = tagger.metrics_.get("more_labelled_rows_to_accept")
        console.print(
            f"wrote {out}: {len(tagger.classes_)} labels; nothing can be auto-accepted at "
            f"precision {target_precision} yet: every request goes to review. "
            + (
                f"About {more:,} more labelled requests like these would allow it."
                if more is not None
                else "Its most confident answers are not right often enough for that: more "
                "history of the same kind will not be enough (fewer, clearer categories may be)."
            )
        )
    else:
        console.print(
            f"wrote {out}: {len(tagger.classes_)} labels, review threshold "
            f"{tagger.threshold_:.3f} for precision {target_precision}"
        )


@tag_app.command("predict")
def predict(
    model: Annotated[Path, typer.Option("--model", "-m", help="tagger bundle folder")],
    input: InputOpt,
    text_col: TextCol,
    output: Annotated[Path, typer.Option("--output", "-o", help="output CSV")],
    engine: Annotated[
        str, typer.Option(help="local, or ray (embedding and tagging as a Ray Data job)")
    ] = "local",
    address: Annotated[
        str | None, typer.Option(help="Ray cluster (HEAD:6379); default a local Ray")
    ] = None,
    workers: Annotated[int | None, typer.Option(help="Ray actors (default: its CPUs)")] = None,
) -> None:
    """Add predicted_label, confidence, needs_review, alternatives (JSON), possible_new_category."""
    from analyzer.analysis.engines import make_engine
    from analyzer.embedding.embedder import get_embedder
    from analyzer.tagging.supervised import load_tagger

    runner = make_engine(engine, address=address, workers=workers)
    embed_model, backend = _embedder_settings()
    tagger = load_tagger(model, embed_backend=backend)
    df = read_input_table(input, text_col)
    texts = texts_of(df, text_col)
    extra = None
    extra_columns = getattr(tagger, "extra_columns_", [])
    if extra_columns:
        missing = [c for c in extra_columns if c not in df.columns]
        if missing:
            raise InputError(f"the model needs the columns {missing}", file=str(input))
        extra = df[extra_columns].astype(str)
    started = time.perf_counter()
    embedder = get_embedder(embed_model or None, backend=backend)
    rows = runner.tag_texts(
        model, texts, embedder, extra=extra, embed_backend=backend, tagger=tagger
    )
    seconds = time.perf_counter() - started
    clashes = [c for c in OUTPUT_COLUMNS if c in df.columns]
    if clashes:
        console.print(f"replacing input columns {clashes} with the tagger's output")
    df["predicted_label"] = [r["predicted_label"] for r in rows]
    df["confidence"] = [round(r["confidence"], 4) for r in rows]
    df["needs_review"] = [r["needs_review"] for r in rows]
    df["alternatives"] = [json.dumps(r["alternatives"]) for r in rows]
    df["possible_new_category"] = [r["possible_new_category"] for r in rows]
    write_output_table(df, output)
    review = float(np.mean(df["needs_review"])) if len(df) else 0.0
    rate = len(df) / seconds if seconds > 0 and len(df) else 0.0
    console.print(f"wrote {output}: {len(df)} rows, {review:.1%} need review, {rate:.0f} texts/s")


@tag_app.command("correct")
def correct(
    text: Annotated[str, typer.Option("--text", help="the request text (redacted before storing)")],
    label: Annotated[str, typer.Option("--label", help="the right category")],
    record_id: Annotated[
        str | None, typer.Option("--record-id", help="the record it corrects")
    ] = None,
    store: StoreOpt = None,
) -> None:
    """Store a correction; `tag train --with-corrections` uses it."""
    from analyzer.tagging.corrections import record_correction

    with open_store(store) as st:
        cid = record_correction(st, text, label, record_id=record_id)
    console.print(f"stored correction {cid}")
