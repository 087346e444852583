"""The one date parser (analyzer.ingest.dates): a column's format is decided from all its values."""

from __future__ import annotations

import pandas as pd
import pytest

from analyzer.errors import InputError
from analyzer.ingest.dates import (
    AMBIGUOUS,
    DateSniffer,
    check_strftime,
    detect_format,
    parse_dates,
    parse_time_column,
)


def utc(values: pd.Series) -> list[str]:
    return [("" if pd.isna(v) else v.strftime("%Y-%m-%dT%H:%M:%S")) for v in values]


def read(values: list[str], **kw: object) -> tuple[list[str], list[str], str]:
    s = pd.Series(values, dtype="str")
    fmt = detect_format(s, column="when", **kw)  # type: ignore[arg-type]
    ts, problem = parse_dates(s, fmt)
    return utc(ts), problem.tolist(), fmt.description


def test_day_first_column_is_read_day_first_everywhere() -> None:
    # the 39%: value by value, 01/09 was read as 9 January beside 30/08 as 30 August
    got, problems, desc = read(["30/08/2017 17:38", "01/09/2017 08:05", "12/10/2017 23:59"])
    assert got == ["2017-08-30T17:38:00", "2017-09-01T08:05:00", "2017-10-12T23:59:00"]
    assert problems == ["", "", ""]
    assert desc == "%d/%m/%Y %H:%M (day-first)"


def test_month_first_column_with_am_pm() -> None:
    got, _, desc = read(["08/30/2017 05:38:00 PM", "09/01/2017 12:05:00 AM"])
    assert got == ["2017-08-30T17:38:00", "2017-09-01T00:05:00"]
    assert desc == "%m/%d/%Y %I:%M:%S %p (month-first)"


def test_evidence_far_down_the_column_counts() -> None:
    values = ["01/02/2020"] * 5000 + ["25/02/2020"]
    got, _, _ = read(values)
    assert got[0] == "2020-02-01T00:00:00"


def test_an_ambiguous_column_is_refused_naming_date_format() -> None:
    with pytest.raises(InputError) as exc:
        detect_format(pd.Series(["01/02/2020 10:00", "03/04/2020 11:30"]), column="created")
    msg = str(exc.value)
    assert "column 'created'" in msg and "--date-format" in msg
    assert "'%d/%m/%Y %H:%M'" in msg and "'%m/%d/%Y %H:%M'" in msg


def test_explicit_format_settles_an_ambiguous_column() -> None:
    got, _, desc = read(["01/02/2020", "03/04/2020"], explicit="%d/%m/%Y")
    assert got == ["2020-02-01T00:00:00", "2020-04-03T00:00:00"]
    assert "--date-format" in desc


def test_day_equal_to_month_everywhere_needs_no_decision() -> None:
    got, problems, _ = read(["01/01/2020", "02/02/2020"])
    assert got == ["2020-01-01T00:00:00", "2020-02-02T00:00:00"] and problems == ["", ""]


def test_a_profile_default_order_settles_what_values_cannot() -> None:
    fmt = detect_format(pd.Series(["01/02/2020"]), default_order="MDY")
    assert fmt.order == "MDY"


def test_self_describing_families() -> None:
    got, problems, desc = read(
        [
            "2017-08-30T17:38:00Z",
            "2017-08-30 19:38+02:00",
            "1504114680",
            "1504114680000",
            "30 Aug 2017 17:38",
            "Wed, 30 August 2017 17:38",
            "2017/08/30 17:38",
        ]
    )
    assert got == ["2017-08-30T17:38:00"] * 7
    assert problems == [""] * 7
    assert "ISO 8601" in desc and "Unix seconds" in desc and "Unix milliseconds" in desc


def test_two_digit_years_and_dots() -> None:
    got, _, desc = read(["30.08.17", "1.9.17"])
    assert got == ["2017-08-30T00:00:00", "2017-09-01T00:00:00"]
    assert desc.startswith("%d.%m.%y")


def test_values_against_the_column_order_are_problems_not_guesses() -> None:
    got, problems, _ = read(["30/08/2017", "31/08/2017", "08/30/2017"])
    assert got[2] == "" and problems[2] == "unparseable date"


def test_without_a_decided_format_ambiguous_values_are_rejected_not_guessed() -> None:
    ts, problem = parse_dates(pd.Series(["01/02/2020", "05/05/2020", "not a date"]))
    assert problem.tolist() == [AMBIGUOUS, "", "unparseable date"]
    assert utc(ts)[1] == "2020-05-05T00:00:00"


def test_local_times_use_the_zone() -> None:
    s = pd.Series(["2021-07-01 12:00", "2021-07-01T12:00:00-04:00"])
    ts, _ = parse_dates(s, detect_format(s), tz="America/New_York")
    assert utc(ts) == ["2021-07-01T16:00:00", "2021-07-01T16:00:00"]
    assert detect_format(s).has_local_times


def test_sniffer_is_undecided_until_a_day_above_12() -> None:
    sn = DateSniffer("c")
    sn.observe(pd.Series(["01/02/2020", "03/04/2020"]))
    assert not sn.decided
    sn.observe(pd.Series(["13/04/2020"]))
    assert sn.decided and sn.result().order == "DMY"


def test_parse_time_column_names_the_row_of_a_bad_value() -> None:
    with pytest.raises(InputError) as exc:
        parse_time_column(
            pd.Series(["2020-01-01", "2020-01-02", "tomorrow"]), column="t", file="f.csv"
        )
    assert str(exc.value).startswith("f.csv: row 3, column 't': unparseable date")


def test_parse_time_column_reads_unix_seconds() -> None:
    ts, fmt = parse_time_column(pd.Series(["1504114680", "1504114740"]), column="t")
    assert utc(ts) == ["2017-08-30T17:38:00", "2017-08-30T17:39:00"]
    assert fmt.description == "Unix seconds"


@pytest.mark.parametrize("bad", ["dd/mm/yyyy", "%H:%M", "%d/%m"])
def test_a_date_format_without_day_month_and_year_is_a_usage_error(bad: str) -> None:
    with pytest.raises(InputError, match="--date-format"):
        check_strftime(bad)


# -- the column that says when a request was made (tag train without --time-col) ------------------


def test_created_time_candidates_put_creation_first_and_never_a_later_step() -> None:
    from analyzer.ingest.time_columns import created_time_candidates

    header = [
        "SR_NUMBER", "date", "CLOSED_DATE", "due_date", "last_update", "time_to_close",
        "Submitted On", "CREATED_DATE", "report_type", "updated_datetime", "year",
    ]  # fmt: skip
    assert created_time_candidates(header) == ["Submitted On", "CREATED_DATE", "date"]
    assert created_time_candidates(header, exclude=["Submitted On"])[0] == "CREATED_DATE"


def test_find_time_column_takes_the_first_that_parses_and_dates_a_blank_as_the_oldest() -> None:
    from analyzer.ingest.time_columns import find_time_column

    days = [
        f"{m:02d}/{d:02d}/{y} 10:00 PM"
        for y in (2021, 2022)
        for m in (1, 2, 3)
        for d in range(1, 29)
    ]
    frame = pd.DataFrame(
        {
            "created_date": ["soon"] * 40 + days[40:],  # a name that says it, values that don't
            "Date Opened": days[:-1] + [""],  # one blank in 168
            "closed_date": days,
        }
    )
    found = find_time_column(frame, rows=pd.Series(range(2, 170)))
    assert found.column == "Date Opened" and found.missing == 1
    assert found.format is not None and found.format.order == "MDY"
    assert found.times is not None and found.times.iloc[-1] == found.times.min()
    assert found.passed_over == ("'created_date' (40 rows without a time, e.g. row 2: "
                                 "unparseable date)",)  # fmt: skip


def test_find_time_column_finds_none_where_no_name_says_time() -> None:
    from analyzer.ingest.time_columns import find_time_column

    frame = pd.DataFrame({"text": ["a", "b"], "closed_date": ["2021-01-01", "2021-01-02"]})
    assert find_time_column(frame).column is None


def test_the_close_time_is_named_for_the_close_never_a_plan_or_a_last_update() -> None:
    from analyzer.ingest.time_columns import close_time_candidates, find_close_column

    columns = ["CREATED_DATE", "LAST_MODIFIED_DATE", "Target Close Date", "CLOSED_DATE",
               "Fecha de cierre", "Date Resolved", "Resolution", "Closed"]  # fmt: skip
    assert close_time_candidates(columns) == [
        "CLOSED_DATE", "Fecha de cierre", "Date Resolved", "Closed",
    ]  # fmt: skip
    frame = pd.DataFrame(
        {
            "Closed Date": ["not a date", "soon", "", "later"],  # filled values do not parse
            "Date Resolved": ["01/25/2024 10:00", "", "02/13/2024 08:30", ""],  # open: blank
        }
    )
    assert find_close_column(frame) == "Date Resolved"
