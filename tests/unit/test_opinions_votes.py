"""Reading votes files: Polis's vote matrix and long-format vote lists, bad votes kept aside."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from analyzer.errors import InputError
from analyzer.ingest.votes import (
    PROFILE_LONG,
    PROFILE_WIDE,
    conversation_for,
    is_votes_input,
    read_votes,
    votes_kind,
)


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_vote_matrix_with_bad_cells_and_rows_keeps_the_rest(tmp_path: Path) -> None:
    f = write(
        tmp_path / "participants-votes.csv",
        "participant,xid,group-id,n-comments,n-votes,n-agree,n-disagree,0,1,2\n"
        "0,someone@example.org,0,0,3,2,1,1,-1,1\n"
        "1,,1,0,2,1,0,,yes,0\n"
        ",,,0,1,1,0,1,,\n"
        "2,,x,0,1,0,1,-1,,\n"
        "0,,0,0,1,1,0,1,,\n",
    )
    read = read_votes(f)
    assert read.kind == PROFILE_WIDE and read.rows_read == 5
    got = {(p, s, v) for p, s, v in read.votes[["participant_id", "statement_id", "vote"]].values}
    assert got == {("0", "0", 1), ("0", "1", -1), ("0", "2", 1), ("1", "2", 0), ("2", "0", -1)}
    rejects = read.rejects.sort_values("row_number").to_dict("records")
    reasons = [(r["row_number"], r["column_name"], r["reason"]) for r in rejects]
    assert (2, "1", "vote must be 1 (agree), -1 (disagree) or 0 (pass)") in reasons
    assert (3, "participant", "no participant id") in reasons
    assert (4, "group-id", "group-id must be a whole number") in reasons
    assert (5, "participant", "duplicate participant row") in reasons
    bad_vote = next(r for r in rejects if r["row_number"] == 2)
    assert json.loads(bad_vote["content"]) == {"participant": "1", "statement": "1", "vote": "yes"}
    people = read.participants.set_index("participant_id")["source_group"]
    assert people["0"] == 0 and people["1"] == 1 and pd.isna(people["2"])
    # the external id is never read into anything kept
    assert "someone@example.org" not in read.votes.to_string() + read.rejects.to_string()


def test_long_votes_reject_bad_rows_and_keep_the_latest_vote(tmp_path: Path) -> None:
    f = write(
        tmp_path / "my_votes.csv",
        "timestamp,datetime,comment-id,voter-id,vote\n"
        "1726860583813,x,0,0,1\n"
        "1726860683813,x,0,0,-1\n"
        "1726860583813,x,1,,1\n"
        "1726860583813,x,,3,1\n"
        "1726860583813,x,2,3,maybe\n"
        "not a time,x,2,4,agree\n"
        "1726860583813,x,2,5,pass\n",
    )
    read = read_votes(f)
    assert read.kind == PROFILE_LONG
    reasons = sorted(zip(read.rejects["row_number"], read.rejects["reason"], strict=True))
    assert reasons == [
        (3, "no participant id"),
        (4, "no statement id"),
        (5, "vote must be 1 (agree), -1 (disagree) or 0 (pass)"),
        (6, "time not understood"),
    ]
    latest, superseded = read.latest()
    assert superseded == 1
    assert sorted(map(tuple, latest[["participant_id", "statement_id", "vote"]].values)) == [
        ("0", "0", -1),
        ("5", "2", 0),
    ]


def test_headers_tell_votes_from_records() -> None:
    assert votes_kind(["participant", "group-id", "0", "1"]) == PROFILE_WIDE
    assert votes_kind(["timestamp", "datetime", "comment-id", "voter-id", "vote"]) == PROFILE_LONG
    assert votes_kind(["participant", "statement_id", "vote", "time"]) == PROFILE_LONG
    assert votes_kind(["comment-id", "comment-body", "agrees"]) is None


def test_conversation_ids_from_names(tmp_path: Path) -> None:
    assert conversation_for(Path("x/bowling_green_participants-votes.csv.gz")) == "bowling_green"
    assert conversation_for(Path("x/town-votes.csv")) == "town"
    assert conversation_for(Path("exports/my.conv/votes.csv")) == "my.conv"
    assert conversation_for(Path("a.csv"), "Given Name") == "given-name"
    folder = tmp_path / "Some Conversation"
    folder.mkdir()
    assert conversation_for(folder) == "some-conversation"


def test_votes_inputs_are_recognised(tmp_path: Path) -> None:
    folder = tmp_path / "conv"
    folder.mkdir()
    assert not is_votes_input(folder)
    write(folder / "votes.csv", "voter-id,comment-id,vote\n1,2,1\n")
    assert is_votes_input(folder) and is_votes_input(folder / "votes.csv")
    comments = write(tmp_path / "comments.csv", "comment-id,comment-body\n1,hello\n")
    assert not is_votes_input(comments)


def test_a_file_that_is_not_votes_is_a_one_line_error(tmp_path: Path) -> None:
    f = write(tmp_path / "x.csv", "a,b\n1,2\n")
    with pytest.raises(InputError, match="not a votes file"):
        read_votes(f)
    empty = write(tmp_path / "v.csv", "voter-id,comment-id,vote\n")
    with pytest.raises(InputError, match="no data rows"):
        read_votes(empty)
