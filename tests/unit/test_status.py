"""Whether a request is closed: one rule (``analyzer.common.status``) for outcomes, the store's
filters and the Open311 front door, in the languages cities write their states in."""

from __future__ import annotations

import duckdb
import numpy as np
import pandas as pd
import pytest

from analyzer.common.status import closed_sql, is_closed, says_closed

STATES = [
    # (status, has a close time, closed?)
    ("Closed", False, True),
    ("Archived", False, True),
    ("Cerrado", False, True),
    ("Atendida", False, True),
    ("Resuelto", False, True),
    ("Fechado", False, True),
    ("Concluído", False, True),
    ("Fermé", False, True),
    ("Open", True, False),  # an open request's last update is not its close
    ("En curso", True, False),
    ("En proceso", True, False),
    ("Pendiente", True, False),
    ("Em andamento", True, False),
    ("En cours", True, False),
    ("Referred To Dept", True, True),  # says neither: the close time decides
    ("Referred To Dept", False, False),
    ("", True, True),
    (None, False, False),
]


@pytest.mark.parametrize(("status", "timed", "expected"), STATES)
def test_a_status_closes_a_request_in_the_city_s_language(
    status: str | None, timed: bool, expected: bool
) -> None:
    assert is_closed(status, timed) is expected


def test_the_sql_rule_is_the_same_rule() -> None:
    frame = pd.DataFrame(
        {
            "status": [s for s, _, _ in STATES],
            "closed_at": [pd.Timestamp("2024-01-02") if t else pd.NaT for _, t, _ in STATES],
        }
    )
    cond, params = closed_sql("status", "closed_at")
    con = duckdb.connect()
    con.register("frame", frame)
    got = con.execute(f"SELECT {cond} AS c FROM frame", params).df()["c"].to_numpy(dtype=bool)
    want = says_closed(frame["status"], frame["closed_at"].notna())
    assert np.array_equal(got, want)
    assert np.array_equal(want, [e for _, _, e in STATES])
