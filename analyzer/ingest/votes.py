"""Votes on statements: Polis exports and long-format vote files, read, validated and stored.

Accepted inputs:

- a Polis export folder (compdemocracy/openData layout): ``comments.csv`` (loaded as records by
  the ``polis`` profile) with ``participants-votes.csv`` (the vote matrix and Polis's own group per
  participant) and/or ``votes.csv`` (one row per vote, with time), and ``summary.csv`` (title);
- a ``participants-votes.csv`` file on its own (any name, gzip allowed): ``participant``,
  optional ``group-id``, one column per statement id, cells 1 agree, -1 disagree, 0 pass, blank
  unseen;
- a long-format votes file: participant, statement id, vote (1 / -1 / 0 or agree / disagree /
  pass) and optionally a time (Polis ``votes.csv``: ``voter-id, comment-id, vote, timestamp``).

A conversation id ties votes to their statements: the export folder's name, else ``--dataset``,
else the file name without its ``votes`` / ``participants-votes`` ending
(``bowling_green_participants-votes.csv.gz`` is conversation ``bowling_green``). Its statements
are the records ingested from the same conversation's comments (ids ``polis:<dataset>:<id>``, the
dataset being the conversation id or ``<conversation>_comments``).

Bad votes (no participant, no statement, a vote that is not agree / disagree / pass, a time that
cannot be read) go to the ``rejects`` table with their reason and row; a vote changed later by
the same participant is superseded (the latest counts, as in Polis) and counted, not rejected.
Participants' external ids (``xid``) are never read into the store.
"""

from __future__ import annotations

import json
import logging
import re
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from analyzer.errors import InputError
from analyzer.ingest.dates import parse_dates
from analyzer.ingest.formats import iter_chunks, sniff
from analyzer.ingest.options import IngestOptions, IngestReport
from analyzer.ingest.pipeline import ingest_file
from analyzer.ingest.profiles.base import column_key, find_column, slug

if TYPE_CHECKING:
    from analyzer.store.database import Store

log = logging.getLogger("analyzer.ingest.votes")

PARTICIPANT_COLUMNS = (
    "voter-id",
    "participant",
    "participant_id",
    "participant-id",
    "voter_id",
    "voter",
    "pid",
)
STATEMENT_COLUMNS = ("comment-id", "statement_id", "statement-id", "comment_id", "statement", "tid")
VOTE_COLUMNS = ("vote",)
TIME_COLUMNS = ("timestamp", "voted_at", "time", "created", "modified", "datetime")
# columns of participants-votes.csv that are not statements (xid is an external id: never kept)
WIDE_META = {"participant", "xid", "group-id", "n-comments", "n-votes", "n-agree", "n-disagree"}
VOTE_WORDS = {
    "1": 1,
    "1.0": 1,
    "+1": 1,
    "agree": 1,
    "-1": -1,
    "-1.0": -1,
    "disagree": -1,
    "0": 0,
    "0.0": 0,
    "-0": 0,
    "pass": 0,
}
VOTE_REASON = "vote must be 1 (agree), -1 (disagree) or 0 (pass)"
PROFILE_WIDE = "polis-participants-votes"
PROFILE_LONG = "votes"
_VOTES_ENDING = re.compile(r"[._-]*(participants[._-]?votes|votes)$", re.IGNORECASE)
REJECT_FIELDS = ("row_number", "column_name", "reason", "content")
HEAD_BYTES = 64 * 1024


@dataclass
class VotesRead:
    """One votes file, validated: good votes (long format), participants' source groups, rejects."""

    path: str
    file_hash: str
    kind: str  # PROFILE_WIDE or PROFILE_LONG
    rows_read: int
    votes: pd.DataFrame  # participant_id, statement_id, vote (int), voted_at (UTC or NaT)
    participants: pd.DataFrame  # participant_id, source_group (nullable Int64)
    rejects: pd.DataFrame  # row_number, column_name, reason, content
    statement_ids: list[str] = field(default_factory=list)  # every statement column (wide)

    def latest(self) -> tuple[pd.DataFrame, int]:
        """The votes with each participant's latest vote per statement, and how many earlier
        votes that superseded."""
        frame = self.votes.assign(_order=np.arange(len(self.votes)))
        frame = frame.sort_values(["voted_at", "_order"], na_position="first", kind="stable")
        latest = frame.drop_duplicates(["participant_id", "statement_id"], keep="last")
        return latest.drop(columns="_order").sort_index(), len(frame) - len(latest)


@dataclass
class VotesReport:
    """What one votes file did to the store (the comments of an export folder report as records)."""

    path: str
    file_hash: str
    conversation_id: str
    kind: str
    rows_read: int = 0
    votes_loaded: int = 0
    votes_rejected: int = 0
    votes_superseded: int = 0
    participants: int = 0
    statements: int = 0
    statements_found: int = 0  # statements with a record in the store (text to show)
    rejects_by_reason: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    skipped: bool = False

    def lines(self) -> list[str]:
        name = Path(self.path).name
        if self.skipped:
            return [
                f"{name}: already ingested ({self.kind}); conversation {self.conversation_id!r} "
                f"unchanged: {self.votes_loaded:,} votes (use --force to read it again)"
            ]
        out = [
            f"{name} ({self.kind}): conversation {self.conversation_id!r}: {self.rows_read:,} "
            f"rows read, {self.votes_loaded:,} votes loaded from {self.participants:,} "
            f"participants on {self.statements:,} statements, {self.votes_rejected:,} rejected"
            + (
                f", {self.votes_superseded:,} superseded by a later vote"
                if self.votes_superseded
                else ""
            )
            + f" in {self.seconds:.1f}s"
        ]
        for reason, n in list(self.rejects_by_reason.items())[:5]:
            out.append(f"  rejected {n:,}: {reason}")
        if self.statements and self.statements_found < self.statements:
            out.append(
                f"  {self.statements - self.statements_found:,} of {self.statements:,} statements "
                "have no comment in the store yet: ingest the conversation's comments.csv "
                f"(with --dataset {self.conversation_id})"
            )
        if self.votes_rejected:
            out.append("  see them with: civicpulse rejects")
        return out

    def as_dict(self) -> dict[str, object]:
        from dataclasses import asdict

        return asdict(self)


# -- recognising votes ---------------------------------------------------------------------


def votes_kind(columns: list[str]) -> str | None:
    """PROFILE_WIDE, PROFILE_LONG or None, from a header."""
    keys = {column_key(c) for c in columns}
    if "participant" in keys and ("group_id" in keys or "n_votes" in keys):
        return PROFILE_WIDE
    has = [
        find_column(columns, cands) is not None
        for cands in (PARTICIPANT_COLUMNS, STATEMENT_COLUMNS, VOTE_COLUMNS)
    ]
    return PROFILE_LONG if all(has) else None


def _header(path: Path) -> list[str]:
    """The column names, from the first bytes only (the file is read in full, and hashed, only
    once it is known to be votes)."""
    import csv
    import gzip
    import io

    from analyzer.ingest.formats.csv import sniff_delimiter

    with open(path, "rb") as fh:
        magic = fh.read(4)
    if magic == b"PAR1":
        import pyarrow.parquet as pq

        return [str(c) for c in pq.read_schema(path).names]
    try:
        opener = gzip.open if magic[:2] == b"\x1f\x8b" else open
        with opener(path, "rb") as fh:
            raw = fh.read(HEAD_BYTES)
    except (OSError, EOFError):
        return []
    head = raw.decode("utf-8", errors="replace").lstrip("\ufeff")
    if head.lstrip()[:1] in ("[", "{"):  # JSON: let the reader find the keys
        for chunk in iter_chunks(sniff(path), 1):
            return [str(c) for c in chunk.frame.columns]
        return []
    first = head.splitlines()[0] if head else ""
    row = next(csv.reader(io.StringIO(first), delimiter=sniff_delimiter(head)), [])
    return [c.strip() for c in row]


@dataclass(frozen=True)
class ExportFiles:
    folder: Path
    comments: Path | None
    participants_votes: Path | None
    votes: Path | None
    summary: Path | None


def export_files(folder: Path) -> ExportFiles:
    """The files of a Polis export folder (plain or gzipped)."""

    def one(*names: str) -> Path | None:
        for name in names:
            for candidate in (folder / name, folder / f"{name}.gz"):
                if candidate.is_file():
                    return candidate
        return None

    return ExportFiles(
        folder,
        one("comments.csv"),
        one("participants-votes.csv"),
        one("votes.csv"),
        one("summary.csv"),
    )


def is_votes_input(path: str | Path) -> bool:
    """A Polis export folder, or a file whose header is a vote matrix or a vote list."""
    p = Path(path)
    if p.is_dir():
        files = export_files(p)
        return bool(files.comments or files.participants_votes or files.votes)
    if not p.is_file() or p.stat().st_size == 0:
        return False
    try:
        return votes_kind(_header(p)) is not None
    except Exception:  # anything unreadable here is for the records reader to report
        return False


# -- reading -------------------------------------------------------------------------------


def _read_frame(path: Path, chunk_rows: int) -> tuple[pd.DataFrame, str]:
    info = sniff(path)
    frames = [c.frame for c in iter_chunks(info, chunk_rows)]
    if not frames or not sum(len(f) for f in frames):
        cols = list(frames[0].columns) if frames else []
        raise InputError(
            "header only, no data rows" + (f" (columns: {', '.join(cols)})" if cols else ""),
            file=str(path),
        )
    frame = frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)
    return frame.fillna("").astype(str), info.sha256


def _reject_rows(rows: Any, column: str, reason: str, content: Any) -> pd.DataFrame:
    return pd.DataFrame(
        {"row_number": rows, "column_name": column, "reason": reason, "content": content}
    )


def _vote_values(raw: pd.Series) -> pd.Series:
    return raw.str.strip().str.lower().map(VOTE_WORDS)


def _ids_json(participant: pd.Series, statement: pd.Series, value: pd.Series) -> pd.Series:
    return [
        json.dumps({"participant": p, "statement": s, "vote": v}, ensure_ascii=False)
        for p, s, v in zip(participant, statement, value, strict=True)
    ]


def read_votes(path: str | Path, *, chunk_rows: int = 50_000) -> VotesRead:
    """Read and validate one votes file (wide or long); :class:`InputError` for a bad file."""
    p = Path(path)
    frame, file_hash = _read_frame(p, chunk_rows)
    columns = [str(c) for c in frame.columns]
    kind = votes_kind(columns)
    if kind is None:
        raise InputError(
            "not a votes file: expected participant, statement id and vote columns "
            f"(or Polis participants-votes.csv); columns found: {', '.join(columns)}",
            file=str(p),
        )
    reader = _read_wide if kind == PROFILE_WIDE else _read_long
    votes, participants, rejects, statements = reader(frame, str(p))
    return VotesRead(str(p), file_hash, kind, len(frame), votes, participants, rejects, statements)


def _read_wide(
    frame: pd.DataFrame, file: str
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, list[str]]:
    by_key = {column_key(c): c for c in frame.columns}
    pcol = by_key["participant"]
    gcol = by_key.get("group_id")
    meta = {c for c in frame.columns if column_key(c) in {column_key(m) for m in WIDE_META}}
    statements = [c for c in frame.columns if c not in meta]
    if not statements:
        raise InputError("no statement columns in the vote matrix", file=file)
    rows = np.arange(1, len(frame) + 1)
    pid = frame[pcol].str.strip()
    rejects = []
    no_id = (pid == "").to_numpy()
    dup = pid.duplicated(keep="first").to_numpy() & ~no_id
    if no_id.any():
        rejects.append(_reject_rows(rows[no_id], pcol, "no participant id", "{}"))
    if dup.any():
        rejects.append(
            _reject_rows(
                rows[dup],
                pcol,
                "duplicate participant row",
                [json.dumps({"participant": x}) for x in pid[dup]],
            )
        )
    ok_rows = ~(no_id | dup)
    cells = frame.loc[ok_rows, statements].to_numpy(dtype=object)
    filled = cells != ""
    r_idx, c_idx = np.nonzero(filled)
    raw = pd.Series(cells[r_idx, c_idx], dtype=object).astype(str)
    value = _vote_values(raw)
    bad = value.isna().to_numpy()
    good_pid = pid[ok_rows].to_numpy()
    stmt = np.asarray([str(s).strip() for s in statements], dtype=object)
    if bad.any():
        rejects.append(
            _reject_rows(
                rows[ok_rows][r_idx[bad]],
                [statements[i] for i in c_idx[bad]],
                VOTE_REASON,
                _ids_json(
                    pd.Series(good_pid[r_idx[bad]]),
                    pd.Series(stmt[c_idx[bad]]),
                    raw[bad].str.slice(0, 50),
                ),
            )
        )
    votes = pd.DataFrame(
        {
            "participant_id": good_pid[r_idx[~bad]],
            "statement_id": stmt[c_idx[~bad]],
            "vote": value[~bad].astype(np.int64).to_numpy(),
            "voted_at": pd.Series(
                pd.NaT, index=range(int((~bad).sum())), dtype="datetime64[us, UTC]"
            ),
        }
    )
    groups = pd.Series(pd.NA, index=pid[ok_rows].index, dtype="Int64")
    if gcol is not None:
        g_raw = frame.loc[ok_rows, gcol].str.strip()
        g_num = pd.to_numeric(g_raw, errors="coerce")
        bad_g = (g_raw != "") & (g_num.isna() | (g_num != g_num.round()))
        if bad_g.any():
            rejects.append(
                _reject_rows(
                    rows[ok_rows][bad_g.to_numpy()],
                    gcol,
                    "group-id must be a whole number",
                    [json.dumps({"participant": x}) for x in pid[ok_rows][bad_g]],
                )
            )
        groups = g_num.where(~bad_g).round().astype("Int64")
    participants = pd.DataFrame(
        {"participant_id": pid[ok_rows].to_numpy(), "source_group": groups.to_numpy()}
    )
    found = pd.concat(rejects, ignore_index=True) if rejects else _empty_rejects()
    return votes, participants, found, [str(s) for s in stmt]


def _read_long(
    frame: pd.DataFrame, file: str
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, list[str]]:
    cols = list(frame.columns)
    pcol = find_column(cols, PARTICIPANT_COLUMNS)
    scol = find_column(cols, STATEMENT_COLUMNS)
    vcol = find_column(cols, VOTE_COLUMNS)
    tcol = find_column(cols, TIME_COLUMNS)
    assert pcol and scol and vcol
    rows = np.arange(1, len(frame) + 1)
    pid, sid = frame[pcol].str.strip(), frame[scol].str.strip()
    raw_vote = frame[vcol]
    value = _vote_values(raw_vote)
    if tcol is not None:
        times, problem = parse_dates(frame[tcol])  # the format decided over the column
    else:
        times = pd.Series(pd.NaT, index=frame.index, dtype="datetime64[us, UTC]")
        problem = pd.Series("", index=frame.index)
    checks = (
        (pid == "", pcol, "no participant id"),
        (sid == "", scol, "no statement id"),
        (value.isna(), vcol, VOTE_REASON),
        (problem != "", tcol or "", "time not understood"),
    )
    rejected = pd.Series(False, index=frame.index)
    found = []
    for mask, column, reason in checks:
        hit = mask & ~rejected
        if hit.any():
            found.append(
                _reject_rows(
                    rows[hit.to_numpy()],
                    column,
                    reason,
                    _ids_json(pid[hit], sid[hit], raw_vote[hit].str.slice(0, 50)),
                )
            )
            rejected |= hit
    ok = ~rejected
    votes = pd.DataFrame(
        {
            "participant_id": pid[ok].to_numpy(),
            "statement_id": sid[ok].to_numpy(),
            "vote": value[ok].astype(np.int64).to_numpy(),
            "voted_at": times[ok].to_numpy(),
        }
    )
    votes["voted_at"] = pd.to_datetime(votes["voted_at"], utc=True)
    participants = pd.DataFrame({"participant_id": pd.unique(votes["participant_id"])})
    participants["source_group"] = pd.Series(pd.NA, index=participants.index, dtype="Int64")
    rejects = pd.concat(found, ignore_index=True) if found else _empty_rejects()
    return votes, participants, rejects, []


def _empty_rejects() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=object) for c in REJECT_FIELDS})


def read_summary(path: Path | None) -> dict[str, str]:
    """``summary.csv`` of a Polis export: key, value rows (topic, url, description...)."""
    if path is None:
        return {}
    import csv
    import gzip

    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rt", encoding="utf-8", errors="replace", newline="") as fh:
            return {r[0].strip(): r[1].strip() for r in csv.reader(fh) if len(r) >= 2 and r[0]}
    except (OSError, csv.Error):
        return {}


# -- conversation ids and statements ---------------------------------------------------------


def conversation_for(path: Path, dataset: str | None = None) -> str:
    """The conversation id of a votes file or export folder (see the module docstring)."""
    if dataset:
        return slug(dataset)
    if path.is_dir():
        return slug(path.name)
    name = path.name
    for suffix in (".gz", ".csv", ".tsv", ".txt", ".json", ".jsonl", ".ndjson", ".parquet"):
        if name.lower().endswith(suffix):
            name = name[: -len(suffix)]
    stem = _VOTES_ENDING.sub("", name)
    if not stem and path.parent.name:  # votes.csv inside an export folder
        return slug(path.parent.name)
    return slug(stem or name)


def statement_prefix(store: Store, conversation_id: str) -> tuple[str, int]:
    """The record-id prefix of the conversation's statements and how many records have it:
    records ``<prefix><statement id>`` from a dataset named like the conversation."""
    best = (f"polis:{conversation_id}:", 0)
    for dataset in (
        conversation_id,
        f"{conversation_id}_comments",
        f"{conversation_id}-comments",
        f"{conversation_id}.comments",
    ):
        row = store.query_df(
            "SELECT prefix, count(*) AS n FROM (SELECT regexp_extract(id, ?, 1) AS prefix "
            "FROM records WHERE contains(id, ?)) WHERE prefix <> '' GROUP BY prefix "
            "ORDER BY n DESC, prefix LIMIT 1",
            [f"^(.*:{re.escape(dataset)}:)[^:]*$", f":{dataset}:"],
        )
        if len(row) and int(row.loc[0, "n"]) > best[1]:
            best = (str(row.loc[0, "prefix"]), int(row.loc[0, "n"]))
    return best


# -- writing ---------------------------------------------------------------------------------


def ingest_votes(
    store: Store,
    path: str | Path,
    *,
    options: IngestOptions | None = None,
    conversation_id: str | None = None,
    summary: dict[str, str] | None = None,
) -> VotesReport:
    """Load one votes file into ``votes`` (one transaction); bad votes to ``rejects``."""
    opts = options or IngestOptions()
    started = time.perf_counter()
    p = Path(path)
    conv = conversation_id or conversation_for(p, opts.dataset)
    info = sniff(p)
    header = _header(p)
    kind = votes_kind(header) or PROFILE_LONG
    seen = store.query_df("SELECT profile, rows_read FROM files WHERE file_hash = ?", [info.sha256])
    label = f"{kind} [{conv}]"
    if not opts.force and len(seen) and seen.loc[0, "profile"] == label:
        n = int(store.scalar("SELECT count(*) FROM votes WHERE conversation_id = ?", [conv]) or 0)
        return VotesReport(
            str(p),
            info.sha256,
            conv,
            kind,
            rows_read=int(seen.loc[0, "rows_read"]),
            votes_loaded=n,
            skipped=True,
            seconds=time.perf_counter() - started,
        )
    read = read_votes(p, chunk_rows=opts.chunk_rows)
    latest, superseded = read.latest()
    report = VotesReport(
        str(p),
        read.file_hash,
        conv,
        read.kind,
        rows_read=read.rows_read,
        votes_loaded=len(latest),
        votes_rejected=len(read.rejects),
        votes_superseded=superseded,
        participants=int(latest["participant_id"].nunique()),
    )
    statement_ids = sorted(set(latest["statement_id"]) | set(read.statement_ids))
    report.statements = len(statement_ids)
    prefix, _ = statement_prefix(store, conv)
    meta = summary or {}
    from analyzer.ingest.privacy.redact import redact

    title = redact(meta["topic"]).text if meta.get("topic") else conv
    description = (
        redact(meta["conversation-description"]).text
        if meta.get("conversation-description")
        else None
    )
    with store.transaction() as con:
        con.execute("DELETE FROM rejects WHERE file_hash = ?", [read.file_hash])
        if len(read.rejects):
            frame = read.rejects.loc[:, list(REJECT_FIELDS)]
            con.register("_vote_rejects", frame)
            try:
                con.execute(
                    "INSERT INTO rejects (file, file_hash, row_number, column_name, reason, "
                    "content) SELECT ?, ?, row_number, column_name, reason, content "
                    "FROM _vote_rejects",
                    [str(p), read.file_hash],
                )
            finally:
                con.unregister("_vote_rejects")
        con.execute(
            "INSERT INTO conversations (conversation_id, title, description, url, "
            "statement_prefix, file_hash, updated_at) VALUES (?, ?, ?, ?, ?, ?, now()) "
            "ON CONFLICT (conversation_id) DO UPDATE SET "
            "title = coalesce(excluded.title, conversations.title), "
            "description = coalesce(excluded.description, conversations.description), "
            "url = coalesce(excluded.url, conversations.url), "
            "statement_prefix = excluded.statement_prefix, file_hash = excluded.file_hash, "
            "updated_at = now()",
            [conv, title, description, meta.get("url") or None, prefix, read.file_hash],
        )
        rows = latest.assign(conversation_id=conv, file_hash=read.file_hash)
        con.register("_new_votes", rows)
        try:
            con.execute(
                "INSERT INTO votes (conversation_id, participant_id, statement_id, vote, "
                "voted_at, file_hash) SELECT conversation_id, participant_id, statement_id, "
                "vote, voted_at, file_hash FROM _new_votes "
                "ON CONFLICT (conversation_id, participant_id, statement_id) DO UPDATE SET "
                "vote = excluded.vote, voted_at = excluded.voted_at, "
                "file_hash = excluded.file_hash WHERE excluded.voted_at IS NULL "
                "OR votes.voted_at IS NULL OR excluded.voted_at >= votes.voted_at"
            )
        finally:
            con.unregister("_new_votes")
        people = read.participants.assign(conversation_id=conv)
        if read.kind == PROFILE_WIDE:
            con.register("_new_people", people)
            try:
                con.execute(
                    "INSERT INTO conversation_participants (conversation_id, participant_id, "
                    "source_group) SELECT conversation_id, participant_id, source_group "
                    "FROM _new_people ON CONFLICT (conversation_id, participant_id) "
                    "DO UPDATE SET source_group = excluded.source_group"
                )
            finally:
                con.unregister("_new_people")
        con.execute(
            "INSERT OR REPLACE INTO files (file_hash, path, profile, rows_read, rows_loaded, "
            "rows_rejected) VALUES (?, ?, ?, ?, ?, ?)",
            [read.file_hash, str(p), label, read.rows_read, len(latest), len(read.rejects)],
        )
    report.statements_found = int(
        store.scalar(
            "SELECT count(*) FROM records WHERE starts_with(id, ?) AND "
            "substr(id, length(?) + 1) IN (SELECT unnest(?::VARCHAR[]))",
            [prefix, prefix, statement_ids],
        )
        or 0
    )
    counts = read.rejects["reason"].value_counts() if len(read.rejects) else pd.Series(dtype=int)
    report.rejects_by_reason = {str(k): int(v) for k, v in counts.items()}
    report.seconds = time.perf_counter() - started
    log.info(
        "%s: conversation %s, %d votes loaded, %d rejected, %d superseded",
        p,
        conv,
        report.votes_loaded,
        report.votes_rejected,
        report.votes_superseded,
    )
    return report


def ingest_votes_input(
    store: Store,
    path: str | Path,
    *,
    options: IngestOptions | None = None,
    progress: Any = True,
) -> list[IngestReport | VotesReport]:
    """``civicpulse ingest`` of a Polis export folder (comments as records, then votes) or of a
    votes file. Returns one report per file read."""
    opts = options or IngestOptions()
    p = Path(path)
    if not p.is_dir():
        return [ingest_votes(store, p, options=opts)]
    files = export_files(p)
    if files.comments is None and files.participants_votes is None and files.votes is None:
        raise InputError(
            "not a Polis export: no comments.csv, participants-votes.csv or votes.csv", file=str(p)
        )
    conv = conversation_for(p, opts.dataset)
    reports: list[IngestReport | VotesReport] = []
    if files.comments is not None:
        reports.append(
            ingest_file(
                store,
                files.comments,
                options=replace(opts, dataset=conv, profile=opts.profile or "polis"),
                progress=progress,
            )
        )
    summary = read_summary(files.summary)
    # the vote matrix carries Polis's own groups; votes.csv (with times) when it is all there is
    votes_file = files.participants_votes or files.votes
    if votes_file is not None:
        reports.append(
            ingest_votes(store, votes_file, options=opts, conversation_id=conv, summary=summary)
        )
    return reports
