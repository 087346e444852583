"""``civicpulse opinions``: opinion groups, consensus and divisive statements from votes.

Stateless on a Polis export folder or votes file (``--input``), or on a conversation in the store
(``--conversation``; ``--list`` shows them). The result is JSON (``--output``), or a short summary
on stdout.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from analyzer.cli import app
from analyzer.cli.common import console, open_store, settings
from analyzer.errors import InputError


def _write(result: dict[str, Any], output: Path | None) -> None:
    text = json.dumps(result, ensure_ascii=False, indent=1)
    if output is None:
        return
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(text + "\n", encoding="utf-8")
    console.print(f"wrote {output}")


def _shown(text: object, statement_id: object, width: int) -> str:
    """A statement's text cut to ``width``; a votes file read without its comments has no text,
    so the statement is named by its id instead."""
    if isinstance(text, str) and text.strip():
        return text[:width]
    return f"statement {statement_id}" if statement_id is not None else "(no text: votes only)"


def _summary(result: dict[str, Any]) -> None:
    conv = result["conversation"]
    out = Console(markup=False)
    out.print(
        f"{conv['conversation_id']}: {conv['participants']:,} participants, "
        f"{conv['statements']:,} statements, {conv['votes']:,} votes; "
        f"{len(result['groups'])} opinion groups ({conv['clustered_participants']:,} "
        "participants in groups)"
    )
    table = Table("group", "size", "representative statements", title="groups")
    for g in result["groups"]:
        reps = "; ".join(
            f"[{r['repful_for']}] {_shown(r.get('text'), r.get('statement_id'), 60)}"
            for r in g["representative"][:3]
        )
        table.add_row(str(g["group_id"]), f"{g['size']:,}", reps)
    out.print(table)
    by_id = {s["statement_id"]: s for s in result["statements"]}
    for name in ("common_ground", "divisive", "uncertain"):
        ids = result[name][:3]
        out.print(f"{name.replace('_', ' ')}: {len(result[name])} listed")
        for sid in ids:
            out.print(f"  {sid}: {_shown(by_id[sid].get('text'), None, 100)}")
    if result.get("themes"):
        tt = Table("theme", "statements", "common ground", "divisive", "verdict", title="themes")
        for t in result["themes"][:15]:
            tt.add_row(
                t["theme_label"][:50],
                str(t["statements"]),
                f"{t['common_ground_share']:.0%}",
                f"{t['divisive_share']:.0%}",
                t["verdict"],
            )
        out.print(tt)


def _themes_for(texts: list[str], seed: int) -> Any:
    """Top-level themes of the statement texts, as ``civicpulse cluster`` finds them."""
    from analyzer.embedding.embedder import get_embedder
    from analyzer.opinions.themes import cluster_statement_themes

    s = settings()
    embedder = get_embedder(s.embed_model or None, s.embed_backend, s.embed_batch_size)
    vectors = embedder.embed(texts, progress=True)
    return cluster_statement_themes(texts, vectors, seed=seed)


@app.command()
def opinions(
    input: Annotated[
        Path | None,
        typer.Option(
            "--input",
            "-i",
            help="Polis export folder (comments.csv + participants-votes.csv "
            "or votes.csv) or a votes file; stateless",
        ),
    ] = None,
    conversation: Annotated[
        str | None, typer.Option("--conversation", "-c", help="a conversation in the store")
    ] = None,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="JSON file to write")
    ] = None,
    use_source_groups: Annotated[
        bool, typer.Option("--use-source-groups", help="the export's own group-id per participant")
    ] = False,
    method: Annotated[
        str, typer.Option(help="civicpulse (default: stabler groups, count from the data) or polis")
    ] = "civicpulse",
    max_groups: Annotated[
        int | None, typer.Option(min=2, help="most groups (default 8; 5 with --method polis)")
    ] = None,
    themes: Annotated[
        bool, typer.Option("--themes/--no-themes", help="join with themes of the statements")
    ] = True,
    seed: Annotated[int | None, typer.Option(help="random seed (default from settings)")] = None,
    list_: Annotated[bool, typer.Option("--list", help="list the store's conversations")] = False,
    store: Annotated[Path | None, typer.Option("--store", help="store path")] = None,
) -> None:
    """Opinion groups, representative statements, group-informed consensus (GIC), common ground,
    divisive and uncertain statements, participant positions, and the theme × group summary."""
    from analyzer.opinions.model import METHODS, OpinionModel

    if list_:
        _list(store)
        return
    if (input is None) == (conversation is None):
        raise InputError("give either --input FOLDER (stateless) or --conversation ID (store)")
    if method not in METHODS:
        raise InputError(f"--method must be one of {', '.join(METHODS)}, not {method!r}")
    if output is not None and output.suffix.lower() != ".json":
        raise InputError("output must end in .json", file=str(output))
    model = OpinionModel(
        method=method,
        max_groups=max_groups,
        use_source_groups=use_source_groups,
        seed=settings(store).seed if seed is None else seed,
    )
    if conversation is not None:
        from analyzer.opinions.stored import ConversationNotFoundError, conversation_opinions

        with open_store(store) as st:
            try:
                result = conversation_opinions(st, conversation, model)
            except ConversationNotFoundError:
                raise InputError(
                    f"no conversation {conversation!r} in the store "
                    "(see `civicpulse opinions --list`)"
                ) from None
        console.print(
            f"run {result['run']['run_id']}" + (" (kept)" if result["run"]["cached"] else "")
        )
    else:
        assert input is not None
        result = _stateless(input, model, themes)
    _write(result, output)
    if output is None:
        _summary(result)


def _stateless(path: Path, model: Any, themes: bool) -> dict[str, Any]:
    from analyzer.ingest.privacy.redact import redact_many
    from analyzer.opinions.conversation import read_export
    from analyzer.opinions.report import build_report

    conv = read_export(path)
    if model.use_source_groups and not conv.has_source_groups:
        raise InputError(
            "--use-source-groups: no group-id column (participants-votes.csv) here", file=str(path)
        )
    started = time.perf_counter()
    # every text that leaves the command is redacted first
    conv.statements["text"] = [r.text for r in redact_many(conv.statements["text"].tolist())]
    conv.redacted = True
    t0 = time.perf_counter()
    model.fit(conv.matrix)
    fit_s = time.perf_counter() - t0
    theme_frame = None
    texts = conv.statements["text"].tolist()
    if themes and sum(1 for t in texts if t.strip()) >= 2:
        theme_frame = _themes_for(texts, model.seed)
        theme_frame.loc[[not t.strip() for t in texts], ["theme_id", "theme_label"]] = None
    result = build_report(model, conv, theme_frame)
    result["rejects"] = (
        conv.rejects.loc[:, ["file", "row_number", "column_name", "reason"]].to_dict("records")
        if len(conv.rejects)
        else []
    )
    result["run"] = {
        "files": conv.files,
        "fit_s": round(fit_s, 3),
        "total_s": round(time.perf_counter() - started, 3),
    }
    if len(conv.rejects):
        console.print(f'{len(conv.rejects):,} votes rejected (listed under "rejects")')
    console.print(
        f"{conv.conversation_id}: {len(result['groups'])} groups from "
        f"{conv.matrix.shape[0]:,} participants × {conv.matrix.shape[1]:,} statements in "
        f"{fit_s:.2f}s"
    )
    return result


def _list(store: Path | None) -> None:
    from analyzer.opinions.stored import list_conversations

    with open_store(store, read_only=True) as st:
        rows = list_conversations(st)
    table = Table(
        "conversation", "title", "participants", "statements", "votes", title="conversations"
    )
    for r in rows:
        table.add_row(
            r["conversation_id"],
            r["title"][:50],
            f"{r['participants']:,}",
            f"{r['statements']:,}",
            f"{r['votes']:,}",
        )
    if not rows:
        table.add_row("(none)", "ingest a Polis export folder or a votes file", "0", "0", "0")
    Console(markup=False).print(table)
