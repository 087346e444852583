"""NLP commands: embed, cluster, sentiment (stateless, CSV in / CSV out) and analyze, themes, emerging (store)."""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

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

if TYPE_CHECKING:
    from analyzer.queries import Filters

InputOpt = Annotated[
    Path, typer.Option("--input", "-i", help="input file (CSV, JSON, Parquet; .gz ok)")
]
TextCol = Annotated[str, typer.Option("--text-col", help="column holding the text")]
StoreOpt = Annotated[
    Path | None, typer.Option("--store", help="DuckDB store (default from settings)")
]


def _embedder():
    from analyzer.embedding.embedder import get_embedder

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
    keep_boilerplate: Annotated[
        bool,
        typer.Option("--keep-boilerplate", help="also cluster placeholder and repeated texts"),
    ] = False,
) -> None:
    """Add theme_id, theme_label (finest level), parent_theme_id, parent_theme_label. No store.

    Empty texts and boilerplate (placeholders such as "See photo", a text shared by 5% of the
    rows: the rule ingest flags them by) are left out of the themes, as `analyze` leaves them
    out: their rows get theme_label "unassigned"."""
    from analyzer.ingest.boilerplate import find_boilerplate
    from analyzer.ingest.privacy.redact import redact_many
    from analyzer.themes.model import cluster_texts

    df = read_input_table(input, text_col)
    texts = texts_of(df, text_col)
    if not texts:
        raise InputError("no rows to cluster", file=str(input))
    empty = np.array([not t.strip() for t in texts], dtype=bool)
    found = find_boilerplate(texts)
    leave_out = empty | (found.mask & (not keep_boilerplate))
    if found.count and not keep_boilerplate:
        shown = ", ".join(f"{n} x {t[:40]!r}" for t, n in found.texts[:3])
        console.print(
            f"left out {found.count} rows of boilerplate text ({shown}); --keep-boilerplate "
            "clusters them"
        )
    # Labels and examples are built from redacted text so no resident's data reaches the output.
    redacted = [r.text for r in redact_many(texts)]
    vectors = _embedder().embed(redacted, progress=True)
    themes = cluster_texts(redacted, vectors, seed=seed, leave_out=leave_out)
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
    from analyzer.sentiment.model import analyze_sentiment

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
    engine: Annotated[
        str,
        typer.Option(help="local (this process) or ray (embedding and sentiment as Ray Data jobs)"),
    ] = "local",
    address: Annotated[
        str | None,
        typer.Option(
            help="Ray cluster to use (HEAD:6379 or ray://HEAD:10001); default a local Ray"
        ),
    ] = None,
    workers: Annotated[
        int | None, typer.Option(help="Ray actors (default: the cluster's CPUs)")
    ] = None,
    ray_cpus: Annotated[
        int | None, typer.Option(help="CPUs of the local Ray started without --address (2)")
    ] = None,
    keep_vectors: Annotated[
        bool,
        typer.Option(
            help="refuse (exit 2) rather than re-embed when the embedding model or its build "
            "differs from the last analysis's"
        ),
    ] = False,
) -> None:
    """Embed what is new, update themes, sentiment and emerging needs; record a run manifest."""
    from analyzer.analysis.engines import make_engine
    from analyzer.analysis.pipeline import run_analysis

    # checked before the store is opened: a wrong flag costs nothing
    make_engine(engine, address=address, workers=workers, local_cpus=ray_cpus)
    s = settings(store)
    if seed is not None:
        s = s.with_overrides(seed=seed)
    with open_store(store) as st:
        manifest = run_analysis(
            st,
            s,
            refit=refit,
            progress=True,
            engine=engine,
            address=address,
            workers=workers,
            ray_cpus=ray_cpus,
            keep_vectors=keep_vectors,
            notify=console.print,
        )
    t = manifest["timings_s"]
    console.print(
        f"run {manifest['run_id']}: {manifest['counts']['records']} records, "
        f"{manifest['counts']['embedded_new']} newly embedded, "
        f"{manifest['counts']['themes']} themes, {manifest['counts']['alerts']} emerging alerts "
        f"in {t['total']:.1f} s" + _engine_note(manifest.get("engine", {}))
    )


def _engine_note(engine: dict) -> str:
    if engine.get("name") != "ray":
        return ""
    if not engine.get("workers"):
        return " (ray: nothing new to embed)"
    return (
        f" (ray at {engine['address']}: {engine['texts_sent']} texts on {engine['workers']} "
        f"workers of {engine['cluster_cpus']} CPUs)"
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
    if v is None:  # a column with no number in it keeps None rather than NaN
        return "–"
    if isinstance(v, float):
        return "–" if v != v else f"{v:.3g}"
    if isinstance(v, list | dict):
        return json.dumps(v, default=str)[:160]
    return str(v)[:160]


themes_app = typer.Typer(
    help="Top-level themes (a table, or --output x.csv / x.json); `export` and `report` one theme.",
    no_args_is_help=False,
    invoke_without_command=True,
)
app.add_typer(themes_app, name="themes")


@themes_app.callback()
def themes(
    ctx: typer.Context,
    store: StoreOpt = None,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="write CSV or JSON")] = None,
    format: Annotated[OutFormat, typer.Option("--format")] = OutFormat.table,
    source: Annotated[
        str | None, typer.Option(help="only this source (the name given at ingest)")
    ] = None,
    kind: Annotated[
        str | None, typer.Option(help="only records of this kind: 311, survey or engagement")
    ] = None,
    sort: Annotated[str, typer.Option(help="size, growth or sentiment")] = "size",
    limit: Annotated[int, typer.Option()] = 40,
) -> None:
    """Top-level themes: id, label, source, size, keywords, sentiment, growth, sub-themes."""
    if ctx.invoked_subcommand is not None:
        return
    import pandas as pd

    from analyzer.queries import Filters, Page, list_themes, stats

    filters = Filters(source=source, kind=kind)
    with open_store(store, read_only=True) as st:
        page = list_themes(st, filters, Page(limit=limit), sort=sort)
        known = stats(st)["sources"] if not page["items"] else []
    df = pd.DataFrame(page["items"])
    if not page["items"]:
        if output is None and format is OutFormat.table:
            print(_no_themes_hint(filters, known))
            return
        # beside a CSV or JSON the hint goes to stderr: stdout stays machine-readable
        console.print(_no_themes_hint(filters, known))
    if output is None and format is OutFormat.table and not df.empty:
        keep = [
            c
            for c in ("theme_id", "label", "source", "size", "growth", "sentiment", "keywords")
            if c in df
        ]
        df = df[keep].copy()
        if "growth" in df:  # last 28 days against the 28 before, as the explorer shows it
            df["growth"] = [
                "–" if g is None or g != g else f"{g:+.0%}" for g in df["growth"].tolist()
            ]
        if "keywords" in df:
            df["keywords"] = [
                ", ".join(map(str, k[:8])) + (" …" if len(k) > 8 else "")
                if isinstance(k, list)
                else k
                for k in df["keywords"].tolist()
            ]
    _emit(df, output, format, "themes")


def _no_themes_hint(filters: Filters, known: list[dict]) -> str:
    """Why a themes table is empty: nothing under the filters, or no analysis yet."""
    asked = ", ".join(
        f"--{k} {v}" for k, v in (("source", filters.source), ("kind", filters.kind)) if v
    )
    names = ", ".join(f"{s['source']} ({s['count']:,})" for s in known)
    if not known:
        return "no themes: the store has no records yet (civicpulse ingest FILE)"
    if asked:
        return f"no themes with {asked}; sources in the store: {names}"
    return f"no themes yet: run `civicpulse analyze` (records in the store: {names})"


ThemeIdArg = Annotated[str, typer.Argument(help="theme id, e.g. REQ0001 or REQ0001.03")]
SinceOpt = Annotated[
    str | None, typer.Option("--since", help="created on or after (YYYY-MM-DD or ISO time)")
]
UntilOpt = Annotated[
    str | None,
    typer.Option(
        "--until", help="created up to (a date includes that whole day; a time is exclusive)"
    ),
]
SourceOpt = Annotated[
    str | None, typer.Option("--source", help="only this source (311, survey, …)")
]
KindOpt = Annotated[
    str | None, typer.Option("--kind", help="only records of this kind: 311, survey or engagement")
]
AreaOpt = Annotated[str | None, typer.Option("--area", help="only this area")]
CategoryOpt = Annotated[str | None, typer.Option("--category", help="only this category")]


def _theme_filters(
    source: str | None,
    since: str | None,
    until: str | None,
    area: str | None,
    category: str | None,
    kind: str | None = None,
) -> Filters:
    from analyzer.common.clock import TimeBoundError, parse_time_range
    from analyzer.queries import Filters

    try:  # the one rule for query bounds (a date is a whole day; clamped to the store's range)
        start, stop = parse_time_range(since, until, names=("--since", "--until"))
    except TimeBoundError as exc:
        if exc.value is None:
            raise InputError("--until must be after --since", column="--until") from None
        raise InputError(
            f"not a date: {exc.value!r} (use YYYY-MM-DD or an ISO date-time)", column=exc.name
        ) from None
    return Filters(source=source, kind=kind, since=start, until=stop, area=area, category=category)


def _out_path(out: Path, suffixes: tuple[str, ...]) -> Path:
    if out.suffix.lower() not in suffixes:
        raise InputError(f"--out must end in {' or '.join(suffixes)}", file=str(out))
    if out.is_dir():
        raise InputError("--out is a folder; give a file name", file=str(out))
    return out


@themes_app.command("export")
def themes_export(
    theme_id: ThemeIdArg,
    out: Annotated[Path, typer.Option("--out", "-o", help="CSV file to write")],
    store: StoreOpt = None,
    source: SourceOpt = None,
    kind: KindOpt = None,
    since: SinceOpt = None,
    until: UntilOpt = None,
    area: AreaOpt = None,
    category: CategoryOpt = None,
) -> None:
    """Write a theme's records as CSV: redacted text only, formula-injection safe, streamed."""
    from analyzer.queries import ThemeNotFoundError
    from analyzer.reports.report import write_theme_records_csv

    path = _out_path(out, (".csv",))
    filters = _theme_filters(source, since, until, area, category, kind)
    with open_store(store, read_only=True) as st:
        try:
            n = write_theme_records_csv(st, theme_id, path, filters)
        except ThemeNotFoundError:
            raise InputError(f"no theme {theme_id!r} (see `civicpulse themes`)") from None
    console.print(f"wrote {path} ({n:,} records of theme {theme_id})")


@themes_app.command("report")
def themes_report(
    theme_id: ThemeIdArg,
    out: Annotated[Path, typer.Option("--out", "-o", help="HTML file to write")],
    store: StoreOpt = None,
    source: SourceOpt = None,
    kind: KindOpt = None,
    since: SinceOpt = None,
    until: UntilOpt = None,
    area: AreaOpt = None,
    category: CategoryOpt = None,
) -> None:
    """Write a one-page HTML report on a theme (charts included; opens offline)."""
    from analyzer.queries import ThemeNotFoundError
    from analyzer.reports.report import theme_report_html

    path = _out_path(out, (".html", ".htm"))
    filters = _theme_filters(source, since, until, area, category, kind)
    with open_store(store, read_only=True) as st:
        try:
            page = theme_report_html(st, theme_id, filters)
        except ThemeNotFoundError:
            raise InputError(f"no theme {theme_id!r} (see `civicpulse themes`)") from None
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page, encoding="utf-8")
    console.print(f"wrote {path} ({len(page) / 1e6:.1f} MB, theme {theme_id})")


@app.command()
def emerging(
    store: StoreOpt = None,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="write CSV or JSON")] = None,
    format: Annotated[OutFormat, typer.Option("--format")] = OutFormat.table,
    source: Annotated[
        str | None, typer.Option(help="only themes of this source (the name given at ingest)")
    ] = None,
    kind: Annotated[
        str | None, typer.Option(help="only records of this kind: 311, survey or engagement")
    ] = None,
    limit: Annotated[int, typer.Option()] = 50,
) -> None:
    """Emerging themes: theme, window, count, baseline, ratio, p-value, examples. Without an
    alert, says why per source (no dates, too little history, too few records, nothing rose)."""
    import pandas as pd

    from analyzer.queries import Filters, Page, explain_emerging, list_emerging

    filters = Filters(source=source, kind=kind)
    with open_store(store, read_only=True) as st:
        result = list_emerging(st, filters, Page(limit=limit))
        why = explain_emerging(st, filters) if not result["items"] else None
    items = result["items"]
    if why is not None:
        if output is None and format is OutFormat.table:
            print(why["reason"])
            return
        # beside a CSV or JSON the reason goes to stderr: stdout stays machine-readable
        console.print(why["reason"])
    df = pd.DataFrame(items)
    if output is None and format is OutFormat.table and not df.empty:
        df = df.assign(examples=df["examples"].map(_first_examples))
        if "window_start" in df:  # a week starts on a day: the table shows the day
            df["window_start"] = pd.to_datetime(df["window_start"], utc=True).dt.strftime(
                "%Y-%m-%d"
            )
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
