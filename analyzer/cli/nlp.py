"""NLP commands: embed, cluster, sentiment (stateless, CSV in / CSV out) and analyze, themes, emerging (store)."""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import numpy as np
import typer

from analyzer.cli import app
from analyzer.cli.common import (
    console,
    open_store,
    read_input_table,
    settings,
    texts_of,
    write_output_table,
)
from analyzer.errors import InputError

InputOpt = Annotated[
    Path, typer.Option("--input", "-i", help="input file (CSV, JSON, Parquet; .gz ok)")
]
TextCol = Annotated[str, typer.Option("--text-col", help="column holding the text")]
StoreOpt = Annotated[
    Path | None, typer.Option("--store", help="DuckDB store (default from settings)")
]


def _embedder():
    from analyzer.embed import get_embedder

    s = settings()
    return get_embedder(s.embed_model or None, s.embed_backend, s.embed_batch_size)


@app.command()
def embed(
    input: InputOpt,
    text_col: TextCol,
    output: Annotated[Path, typer.Option("--output", "-o", help="output .npy")],
) -> None:
    """Write a float32 array, one L2-normalised row per input row, in input order."""
    if output.suffix != ".npy":
        raise InputError("output must end in .npy", file=str(output))
    df = read_input_table(input, text_col)
    vectors = _embedder().embed(texts_of(df, text_col), progress=True)
    output.parent.mkdir(parents=True, exist_ok=True)
    np.save(output, vectors.astype(np.float32))
    console.print(f"wrote {output} ({vectors.shape[0]} x {vectors.shape[1]} float32)")


@app.command()
def cluster(
    input: InputOpt,
    text_col: TextCol,
    output: Annotated[Path, typer.Option("--output", "-o")],
    seed: Annotated[int, typer.Option(help="random seed (deterministic output)")] = 42,
) -> None:
    """Add theme_id, theme_label (finest level), parent_theme_id, parent_theme_label. No store."""
    from analyzer.privacy import redact_many
    from analyzer.themes import cluster_texts

    df = read_input_table(input, text_col)
    texts = texts_of(df, text_col)
    if not texts:
        raise InputError("no rows to cluster", file=str(input))
    # Labels and examples are built from redacted text so no resident's data reaches the output.
    redacted = [r.text for r in redact_many(texts)]
    vectors = _embedder().embed(redacted, progress=True)
    themes = cluster_texts(redacted, vectors, seed=seed)
    for col in themes.columns:
        df[col] = themes[col].to_numpy()
    write_output_table(df, output)
    n_themes = themes["parent_theme_id"].replace("", np.nan).nunique()
    console.print(f"wrote {output}: {len(df)} rows, {n_themes} top-level themes")


@app.command()
def sentiment(
    input: InputOpt,
    text_col: TextCol,
    output: Annotated[Path, typer.Option("--output", "-o")],
) -> None:
    """Add sentiment (negative, neutral, positive) and sentiment_score in [-1, 1]."""
    from analyzer.sentiment import analyze_sentiment

    df = read_input_table(input, text_col)
    texts = texts_of(df, text_col)
    vectors = _embedder().embed(texts, progress=True) if texts else None
    result = analyze_sentiment(texts, embeddings=vectors)
    df["sentiment"] = result["sentiment"].to_numpy()
    df["sentiment_score"] = result["sentiment_score"].round(4).to_numpy()
    write_output_table(df, output)
    counts = df["sentiment"].value_counts().to_dict()
    console.print(f"wrote {output}: {len(df)} rows; {counts}")


@app.command()
def analyze(
    store: StoreOpt = None,
    refit: Annotated[bool, typer.Option(help="re-fit themes even if little is new")] = False,
    seed: Annotated[int | None, typer.Option(help="random seed")] = None,
) -> None:
    """Embed what is new, update themes, sentiment and emerging needs; record a run manifest."""
    from analyzer.pipeline import run_analysis

    s = settings(store)
    if seed is not None:
        s = s.with_overrides(seed=seed)
    with open_store(store) as st:
        manifest = run_analysis(st, s, refit=refit, progress=True)
    t = manifest["timings_s"]
    console.print(
        f"run {manifest['run_id']}: {manifest['counts']['records']} records, "
        f"{manifest['counts']['embedded_new']} newly embedded, "
        f"{manifest['counts']['themes']} themes, {manifest['counts']['alerts']} emerging alerts "
        f"in {t['total']:.1f} s"
    )


class OutFormat(StrEnum):
    table = "table"
    csv = "csv"
    json = "json"


def _emit(df, output: Path | None, fmt: OutFormat, title: str) -> None:
    from rich.table import Table

    if output is not None:
        output.parent.mkdir(parents=True, exist_ok=True)
        if output.suffix == ".json" or fmt is OutFormat.json:
            output.write_text(df.to_json(orient="records", date_format="iso", indent=2), "utf-8")
        else:
            df.to_csv(output, index=False)
        console.print(f"wrote {output} ({len(df)} rows)")
        return
    if fmt is OutFormat.json:
        print(df.to_json(orient="records", date_format="iso", indent=2))
        return
    if fmt is OutFormat.csv:
        print(df.to_csv(index=False), end="")
        return
    table = Table(title=title)
    for col in df.columns:
        table.add_column(str(col), overflow="fold")
    for row in df.itertuples(index=False):
        table.add_row(*[_cell(v) for v in row])
    from rich.console import Console

    Console().print(table)


def _cell(v: object) -> str:
    if isinstance(v, float):
        return "–" if v != v else f"{v:.3g}"
    if isinstance(v, list | dict):
        return json.dumps(v, default=str)[:160]
    return str(v)[:160]


@app.command()
def themes(
    store: StoreOpt = None,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="write CSV or JSON")] = None,
    format: Annotated[OutFormat, typer.Option("--format")] = OutFormat.table,
    source: Annotated[str | None, typer.Option(help="only this source (311, survey, …)")] = None,
    sort: Annotated[str, typer.Option(help="size, growth or sentiment")] = "size",
    limit: Annotated[int, typer.Option()] = 40,
) -> None:
    """Top-level themes: id, label, size, keywords, sentiment, growth, sub-themes."""
    import pandas as pd

    from analyzer.queries import Filters, Page, list_themes

    with open_store(store, read_only=True) as st:
        page = list_themes(st, Filters(source=source), Page(limit=limit), sort=sort)
    df = pd.DataFrame(page["items"])
    if output is None and format is OutFormat.table and not df.empty:
        keep = [
            c for c in ("theme_id", "label", "size", "growth", "sentiment", "keywords") if c in df
        ]
        df = df[keep]
    _emit(df, output, format, "themes")


@app.command()
def emerging(
    store: StoreOpt = None,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="write CSV or JSON")] = None,
    format: Annotated[OutFormat, typer.Option("--format")] = OutFormat.table,
    limit: Annotated[int, typer.Option()] = 50,
) -> None:
    """Emerging themes: theme, window, count, baseline, ratio, p-value, examples."""
    import pandas as pd

    from analyzer.queries import Filters, Page, list_emerging

    with open_store(store, read_only=True) as st:
        result = list_emerging(st, Filters(), Page(limit=limit))
    items = result["items"] if isinstance(result, dict) else result
    df = pd.DataFrame(items)
    if output is None and format is OutFormat.table and not df.empty:
        df = df.assign(examples=df["examples"].map(_first_examples))
        keep = [
            c
            for c in (
                "theme_id",
                "theme_label",
                "kind",
                "window_start",
                "count",
                "baseline",
                "ratio",
                "p_value",
                "q_value",
                "examples",
            )
            if c in df
        ]
        df = df[keep]
    _emit(df, output, format, "emerging needs")


def _first_examples(xs: object) -> str:
    if not isinstance(xs, list):
        return ""
    texts = [x.get("text", "") if isinstance(x, dict) else str(x) for x in xs[:2]]
    return " | ".join(texts)[:200]
