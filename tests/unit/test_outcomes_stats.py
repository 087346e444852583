"""Time to close with censoring, indirect standardisation and the per-group table."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analyzer.errors import InputError
from analyzer.outcomes import (
    OutcomeTable,
    close_states,
    close_time_quantiles,
    expected_closures,
    on_time,
    read_targets,
    standardise_binary,
    standardise_closures,
)

UTC = "UTC"


def test_statuses_of_three_cities_open_or_close_requests() -> None:
    t0 = pd.Timestamp("2020-01-01", tz=UTC)
    frame = pd.DataFrame(
        {
            "status": ["closed", "open", "Archived", "In Process", "Referred To Dept", None, None],
            "created_at": [t0] * 7,
            "updated_at": [
                t0 + pd.Timedelta(days=d) if d is not None else pd.NaT
                for d in (2, 5, 3, None, None, 4, None)
            ],
            "as_of": [t0 + pd.Timedelta(days=10)] * 7,
        }
    )
    s = close_states(frame)
    # an open Boston request's "updated" time is not a close: it waits until the export
    assert list(s["closed"]) == [True, False, True, False, False, True, False]
    assert list(s["days"]) == [2.0, 10.0, 3.0, 10.0, 10.0, 4.0, 10.0]
    assert list(s["event"]) == [True, False, True, False, False, True, False]


def test_a_close_before_the_request_is_not_a_duration() -> None:
    t0 = pd.Timestamp("2020-01-10", tz=UTC)
    frame = pd.DataFrame(
        {
            "status": ["closed", "closed"],
            "created_at": [t0, t0],
            "updated_at": [t0 - pd.Timedelta(days=1), pd.NaT],
            "as_of": [t0, t0],
        }
    )
    s = close_states(frame)
    assert list(s["closed"]) == [True, True] and not s["timed"].any()
    assert s["days"].isna().all()


def test_on_time_waits_for_requests_not_yet_due() -> None:
    got = on_time(
        days=np.array([1.0, 5.0, 1.0, 5.0, 2.0, np.nan]),
        closed=np.array([True, True, False, False, True, True]),
        target_days=np.array([2.0, 2.0, 2.0, 2.0, np.nan, 2.0]),
    )
    np.testing.assert_array_equal(got, [1.0, 0.0, np.nan, 0.0, np.nan, np.nan])


def test_open_requests_are_censored_not_dropped() -> None:
    """Half the requests still open after 10 days: dropping them would put the median at 1 day;
    Kaplan-Meier knows it is beyond 10 and says the median is not reached."""
    days = np.array([1.0, 1.0, 1.0, 10, 10, 10])
    event = np.array([True, True, True, False, False, False])
    times = close_time_quantiles(days, event)
    assert times.median is None and times.p90 is None
    assert close_time_quantiles(days[:3], event[:3]).median == 1.0
    full = close_time_quantiles(np.arange(1.0, 21.0), np.ones(20, dtype=bool))
    assert full.median_low <= full.median <= full.median_high
    assert full.p90 == 19.0  # the first time at which S(t) falls below 0.1 (as SAS LIFETEST)


def test_nelson_aalen_expectations_add_up_to_the_closures_in_every_stratum() -> None:
    rng = np.random.default_rng(3)
    days = rng.exponential(4, 2000).round(1)  # ties, as bulk closures make
    event = rng.random(2000) < 0.8
    strata = rng.integers(0, 7, 2000)
    days[:20] = np.nan  # without a time: neither at risk nor expected
    expected = expected_closures(days, event, strata)
    assert expected[:20].sum() == 0
    for s in range(7):
        keep = (strata == s) & ~np.isnan(days)
        assert expected[keep].sum() == pytest.approx(event[keep].sum())


def _requests(n: int = 6000, seed: int = 0) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    groups = rng.choice(list("ABCDEFG"), n)
    strata = rng.integers(0, 30, n)
    base = 0.1 + 0.8 * strata / 30  # strata differ a lot: the mix matters
    better = np.where(groups == "C", 1.6, 1.0)  # C really does better than its mix
    y = (rng.random(n) < np.clip(base * better, 0, 0.99)).astype(float)
    days = rng.exponential(3.0 / better * (1 + strata / 10))
    event = rng.random(n) < 0.9
    return groups, strata, y, days, event


def test_observed_equals_expected_over_all_groups_by_construction() -> None:
    groups, strata, y, days, event = _requests()
    y[::17] = np.nan  # not applicable: counts in neither
    binary = standardise_binary(y, groups, strata)
    closures = standardise_closures(days, event, groups, strata)
    assert binary["observed"].sum() == pytest.approx(binary["expected"].sum())
    assert closures["observed"].sum() == pytest.approx(closures["expected"].sum())
    assert binary["observed"].sum() == np.nansum(y)
    assert closures["observed"].sum() == event.sum()


def test_the_group_that_differs_is_found_and_the_others_are_not() -> None:
    groups, strata, y, days, event = _requests()
    for table in (
        standardise_binary(y, groups, strata),
        standardise_closures(days, event, groups, strata),
    ):
        assert table.loc["C", "ratio"] > 1.1 and table.loc["C", "q_value"] < 0.01
        assert (table.loc["C", "ratio_low"] > 1) and (table["ratio_low"] <= table["ratio"]).all()
        assert (table["ratio"] <= table["ratio_high"]).all()
        others = table.drop(index="C")
        # a group's ratio against the pooled rates shifts a little when C is better
        assert (others["q_value"] > 0.001).sum() >= 4


def test_the_binary_interval_stays_possible_at_the_edges() -> None:
    groups = np.array(["A"] * 50 + ["B"] * 50)
    y = np.r_[np.ones(50), np.zeros(50)]
    table = standardise_binary(y, groups, np.zeros(100))
    # B got none: its interval starts at 0; A got all: at most 50 of 50, twice the 25 expected
    assert table.loc["B", "ratio"] == 0 and table.loc["B", "ratio_low"] == pytest.approx(
        0, abs=1e-9
    )
    assert table.loc["A", "ratio_high"] <= 2.0 + 1e-9


def test_exact_poisson_interval_for_closures() -> None:
    # 10 observed against 10 expected: Garwood's interval is 0.480 to 1.839
    days = np.ones(20)
    event = np.r_[np.ones(10, dtype=bool), np.zeros(10, dtype=bool)]
    table = standardise_closures(days, event, np.array(["A"] * 20), np.zeros(20))
    assert table.loc["A", "ratio"] == pytest.approx(1.0)
    assert table.loc["A", "ratio_low"] == pytest.approx(0.4795, abs=1e-3)
    assert table.loc["A", "ratio_high"] == pytest.approx(1.8390, abs=1e-3)


def _frame(n: int = 3000, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    created = pd.Timestamp("2018-01-01", tz=UTC) + pd.to_timedelta(rng.integers(0, 700, n), "D")
    waited = pd.to_timedelta(rng.exponential(5, n), "D")
    closed = rng.random(n) < 0.9
    return pd.DataFrame(
        {
            "id": [f"r{i}" for i in range(n)],
            "source": "311",
            "category": rng.choice(["pothole", "graffiti", "trash"], n),
            "theme": rng.choice(["road", "walls", None], n),
            "area": rng.choice(["north", "south", "east", ""], n),
            "status": np.where(closed, "closed", "open"),
            "created_at": created,
            "updated_at": (created + waited).where(closed),
            "as_of": pd.Timestamp("2020-01-01", tz=UTC),
            "note": rng.choice(["Case Resolved. fixed", "no violation found", "Duplicate", ""], n),
            "expected_at": None,
            "lat": 42.3,
            "lon": -71.0,
        }
    )


@pytest.mark.parametrize("by", ["area", "theme", "category"])
def test_the_table_adds_up(by: str) -> None:
    report = OutcomeTable(by).fit(_frame()).transform()
    rows = report.rows
    assert (
        rows["requests"].sum() == 3000 and (rows["closed"] + rows["open"] == rows["requests"]).all()
    )
    shares = rows[[c for c in rows if c.startswith("share_")]].sum(axis=1)
    np.testing.assert_allclose(shares, 1.0)
    for measure in ("time_to_close", "without_action"):
        totals = report.totals[measure]
        assert totals["observed"] == pytest.approx(totals["expected"])
    missing = {"area": "(no area)", "theme": "(no theme)", "category": None}[by]
    if missing:
        assert missing in set(rows["group"])
    # says so instead of inventing one
    assert any(m.startswith("no targets") for m in report.messages)
    assert rows["on_time_share"].isna().all()


def test_strata_leave_out_the_grouping_dimension() -> None:
    """Grouped by category, categories are compared on theme x year: a category is not expected
    to close like itself (which would make every ratio 1)."""
    frame = _frame()
    slow = frame["category"] == "pothole"
    frame.loc[slow, "updated_at"] = frame.loc[slow, "created_at"] + pd.Timedelta(days=60)
    report = OutcomeTable("category").fit(frame).transform()
    pothole = report.rows.set_index("group").loc["pothole"]
    assert pothole["ratio"] < 0.7 and pothole["differs"]
    assert pothole["verdict"] == "slower than its mix predicts"


def test_targets_give_an_on_time_share(tmp_path: Path) -> None:
    path = tmp_path / "targets.csv"
    path.write_text("category,target_days\npothole,3\ngraffiti,10\n", encoding="utf-8")
    report = OutcomeTable("area", measure="on_time", targets=read_targets(path))
    rows = report.fit(_frame()).transform().rows
    assert rows["on_time_share"].between(0, 1).all()
    assert rows["on_time_observed"].sum() == pytest.approx(rows["on_time_expected"].sum())


@pytest.mark.parametrize(
    ("content", "where"),
    [
        ("category,days\npothole,3\n", "columns found: category, days"),
        ("category,target_days\npothole,soon\n", "row 2, column 'target_days'"),
        ("category,target_days\npothole,3\n,4\n", "row 3, column 'category'"),
        ("category,target_hours\npothole,-1\n", "row 2, column 'target_hours'"),
        ("category,target_days\npothole,3\npothole,4\n", "row 3"),
    ],
)
def test_a_bad_targets_file_names_file_row_and_column(
    tmp_path: Path, content: str, where: str
) -> None:
    path = tmp_path / "t.csv"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(InputError) as err:
        read_targets(path)
    assert str(path) in str(err.value) and where in str(err.value)


def test_target_hours_are_days() -> None:
    from analyzer.outcomes import Targets

    targets = Targets(days={(None, "a"): 0.5, ("311", "b"): 2.0})
    got = targets.for_requests(pd.Series(["311", "311", "x"]), pd.Series(["a", "b", "b"]))
    np.testing.assert_array_equal(got, [0.5, 2.0, np.nan])


def _clustered(
    tau: float, batch: float, seed: int = 5, outlier: float = 0.5
) -> tuple[np.ndarray, ...]:
    """30 areas of 300 to 12,000 requests made over 48 months. Each area's true effect spreads
    with ``tau`` (log scale) and each of its months with ``batch`` (a month's requests close
    together); one more area ("Z") truly stands out by ``outlier``."""
    rng = np.random.default_rng(seed)
    sizes = np.r_[np.geomspace(300, 12_000, 30).astype(int), 4_000]
    names = np.r_[[f"A{i:02d}" for i in range(30)], ["Z"]]
    effect = np.r_[rng.normal(0, tau, 30), outlier]
    groups = np.repeat(names, sizes)
    months = rng.integers(0, 48, len(groups))
    shock = rng.normal(0, batch, (len(names), 48))
    area = np.repeat(np.arange(len(names)), sizes)
    shift = np.repeat(effect, sizes) + shock[area, months]
    strata = rng.integers(0, 12, len(groups))
    base = 0.2 + 0.05 * strata
    y = (rng.random(len(groups)) < 1 / (1 + (1 - base) / base * np.exp(-shift))).astype(float)
    days = rng.exponential((1 + strata / 4) * np.exp(-shift))
    event = rng.random(len(groups)) < 0.9
    return groups, strata, months, y, days, event


def _both(measure: str, data: tuple[np.ndarray, ...], **options: object) -> pd.DataFrame:
    groups, strata, months, y, days, event = data
    if measure == "binary":
        return standardise_binary(y, groups, strata, clusters=months, **options)
    return standardise_closures(days, event, groups, strata, clusters=months, **options)


@pytest.mark.parametrize("measure", ["binary", "closures"])
def test_requests_closing_in_batches_widen_the_intervals(measure: str) -> None:
    """Areas served alike, but each month's requests of an area close together: chance alone
    would call most large areas different; with each area's overdispersion measured month by
    month, few ordinary ones are, the one that really differs still is, and the totals add up."""
    data = _clustered(tau=0.0, batch=0.3)
    wide = _both(measure, data)
    plain = _both(measure, data, overdispersion=False)
    spread = wide.attrs["spread"]
    assert spread.phi > 2 and plain.attrs["spread"].phi == 1
    ordinary = [g for g in wide.index if g != "Z"]
    assert (plain.loc[ordinary, "q_value"] < 0.05).mean() >= 0.15
    assert (wide.loc[ordinary, "q_value"] < 0.05).mean() <= 0.1
    assert wide.loc["Z", "q_value"] < 0.05 and wide.loc["Z", "ratio_low"] > 1
    width = wide["ratio_high"] - wide["ratio_low"]
    assert (width >= plain["ratio_high"] - plain["ratio_low"] - 1e-9).all()
    assert (wide["ratio_low"] <= wide["ratio"]).all() and (
        wide["ratio"] <= wide["ratio_high"]
    ).all()
    assert wide["observed"].sum() == pytest.approx(wide["expected"].sum())
    if measure == "binary":  # still a possible share: at most every request, at least none
        most = pd.Series(data[0]).value_counts().reindex(wide.index) / wide["expected"]
        assert (wide["ratio_high"] <= most + 1e-9).all() and (wide["ratio_low"] >= 0).all()


@pytest.mark.parametrize("measure", ["binary", "closures"])
def test_real_differences_among_areas_are_reported_not_absorbed(measure: str) -> None:
    """Areas truly differ (by about 15%) and requests are independent: no overdispersion is
    added, so the differences are found, and the spread among areas is reported beside them."""
    data = _clustered(tau=0.15, batch=0.0)
    table = _both(measure, data)
    spread = table.attrs["spread"]
    assert spread.phi < 1.3 and 0.08 < spread.tau < 0.25 and spread.p_value < 1e-6
    assert (table["q_value"] < 0.05).sum() >= 10


def test_alike_areas_of_independent_requests_add_nothing() -> None:
    data = _clustered(tau=0.0, batch=0.0, outlier=0.0)
    for measure in ("binary", "closures"):
        table = _both(measure, data)
        spread = table.attrs["spread"]
        assert spread.phi < 1.3 and spread.tau < 0.05
        assert (table["q_value"] < 0.05).sum() <= 1


def test_cluster_dispersion_is_the_batch_size() -> None:
    """Every request counted four times in its own month: the count varies as a sum of
    independent batches of four, 4 times the variance of independent requests."""
    from analyzer.outcomes import cluster_dispersion

    rng = np.random.default_rng(0)
    n = 40_000
    groups = np.repeat(["a", "b"], n // 2)
    months = rng.integers(0, 60, n)
    expected = np.full(n, 0.3)
    observed = (rng.random(n) < 0.3).astype(float)
    variance = pd.Series({"a": 0.21 * n / 2, "b": 0.21 * n / 2})
    phi, _ = cluster_dispersion(groups, months, observed, expected, variance)
    assert phi.between(0.8, 1.25).all()  # independent: about 1 (never below 1)
    batch = np.repeat(np.arange(n), 4)
    phi4, pooled4 = cluster_dispersion(
        groups[batch], months[batch], observed[batch], expected[batch], variance * 4
    )
    # batches of 4 within a month: the same months, each count 4 times over
    assert 2.5 < pooled4 < 6 and phi4.between(2.5, 6).all()


def test_a_yes_no_group_with_few_expected_is_described_not_tested() -> None:
    groups = np.array(["big"] * 400 + ["tiny"] * 6)
    y = np.r_[np.tile([1.0, 0.0], 200), np.ones(6)]
    table = standardise_binary(y, groups, np.zeros(len(y)))
    assert np.isnan(table.loc["tiny", "p_value"]) and np.isnan(table.loc["tiny", "q_value"])
    assert table.loc["tiny", "ratio"] > 1 and np.isfinite(table.loc["big", "q_value"])


def test_q_values_are_benjamini_hochberg_over_the_tested_groups() -> None:
    from statsmodels.stats.multitest import multipletests

    groups, strata, y, days, event = _requests()
    y[groups == "G"] = np.nan  # nothing to test in G: not a group of this measure
    table = standardise_binary(y, groups, strata)
    assert "G" not in table.index
    closures = standardise_closures(days, event, groups, strata)
    np.testing.assert_allclose(
        closures["q_value"], multipletests(closures["p_value"], method="fdr_bh")[1]
    )
    assert (closures["q_value"] >= closures["p_value"] - 1e-15).all()


@pytest.mark.parametrize("period", ["year", "quarter", "all"])
@pytest.mark.parametrize("overdispersion", [True, False])
def test_observed_equals_expected_for_every_period_and_measure(
    period: str, overdispersion: bool, tmp_path: Path
) -> None:
    path = tmp_path / "targets.csv"
    path.write_text("category,target_days\npothole,3\ngraffiti,10\ntrash,1\n", encoding="utf-8")
    table = OutcomeTable(
        "area", period=period, overdispersion=overdispersion, targets=read_targets(path)
    )
    report = table.fit(_frame()).transform()
    for measure, totals in report.totals.items():
        assert totals["observed"] == pytest.approx(totals["expected"]), measure
        assert totals["observed"] > 0
    assert not [m for m in report.messages if "a bug" in m]
