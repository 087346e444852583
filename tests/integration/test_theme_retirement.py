"""Themes a re-fit drops are retired, answer 404 and never take new records.

Built through the production path on real Boston 311 requests: ingest, ``run_analysis``, a re-fit
after the same requests changed, then an incremental run. The first texts are about snow and
abandoned cars; the update gives the same request ids texts about parking and dangerous
conditions, shuffled so that no previous theme keeps its members: the re-fit drops the old themes.
The increment then brings new snow requests, which the dropped snow themes' centroids would take.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from analyzer.analysis.pipeline import run_analysis
from analyzer.config import Settings, load_settings
from analyzer.ingest import ingest_file
from analyzer.store.database import Store

SAMPLE = Path(__file__).resolve().parents[2] / "data_samples" / "boston_311_sample.csv"
PER_SERVICE = 60
NEW_REQUESTS = 4  # under the re-fit share (5%): the third run is incremental


@dataclass(frozen=True)
class Runs:
    path: Path
    refit: dict  # the re-fit's manifest
    increment: dict  # the incremental run's manifest
    new_ids: list[str]  # the records the incremental run placed


def _requests(df: pd.DataFrame, service: str, start: int, n: int) -> pd.DataFrame:
    return df[df["service_name"] == service].iloc[start : start + n]


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Runs:
    if not SAMPLE.is_file():
        pytest.skip("data_samples/boston_311_sample.csv is absent")
    df = pd.read_csv(SAMPLE, dtype=str)
    df = df[df["description"].fillna("").str.len() > 30].drop_duplicates("description")
    first = pd.concat(
        [
            _requests(df, "Sidewalk Not Shoveled", 0, PER_SERVICE),
            _requests(df, "Abandoned Vehicle", 0, PER_SERVICE),
        ]
    )
    # The same requests, updated later with other texts, shuffled across the old themes.
    changed = pd.concat(
        [
            _requests(df, "Illegal Parking", 0, PER_SERVICE),
            _requests(df, "Unsafe Dangerous Conditions", 0, PER_SERVICE),
        ]
    ).sample(frac=1.0, random_state=0)
    changed["service_request_id"] = first["service_request_id"].to_numpy()
    changed["updated_datetime"] = "2021-01-04T00:00:00-05:00"  # after every sample date
    new = _requests(df, "Sidewalk Not Shoveled", PER_SERVICE, NEW_REQUESTS)
    folder = tmp_path_factory.mktemp("retirement")
    files = []
    for name, part in (("first", first), ("changed", changed), ("new", new)):
        part.to_csv(folder / f"{name}.csv", index=False)
        files.append(folder / f"{name}.csv")
    path = folder / "store.duckdb"
    settings = load_settings().with_overrides(store_path=path)
    with Store(path) as store:
        ingest_file(store, files[0], profile="boston", progress=False)
        run_analysis(store, settings)
        ingest_file(store, files[1], profile="boston", progress=False)
        refit = run_analysis(store, settings, refit=True)
        ingest_file(store, files[2], profile="boston", progress=False)
        increment = run_analysis(store, settings)
        new_ids = store.query_df(
            "SELECT record_id FROM assignments WHERE run_id = ? ORDER BY record_id",
            [increment["run_id"]],
        )["record_id"].tolist()
    return Runs(path, refit, increment, new_ids)


@pytest.fixture()
def store(runs: Runs) -> Iterator[Store]:
    with Store(runs.path, read_only=True) as s:
        yield s


def retired_by_lineage(store: Store) -> set[str]:
    events = store.query_df("SELECT DISTINCT theme_id FROM theme_lineage WHERE event = 'retired'")
    return set(events["theme_id"])


def test_the_runs_are_a_refit_then_an_increment(runs: Runs, store: Store) -> None:
    assert runs.refit["themes"]["311"]["mode"] == "refit"
    assert runs.increment["themes"]["311"]["mode"] == "incremental"
    assert len(runs.new_ids) == NEW_REQUESTS
    # the re-fit dropped themes (the snow ones at least: no snow text is left)
    assert retired_by_lineage(store)


def test_every_theme_a_refit_dropped_is_retired(store: Store) -> None:
    retired = retired_by_lineage(store)
    status = store.query_df(
        "SELECT theme_id, status FROM themes WHERE theme_id IN (SELECT unnest(?))",
        [sorted(retired)],
    )
    assert set(status["theme_id"]) == retired  # kept (their ids stay reserved), ...
    assert set(status["status"]) == {"retired"}  # ... retired, and still not re-activated
    # every theme row, and every lineage row, says which source it belongs to
    assert store.scalar("SELECT count(*) FROM themes WHERE source IS DISTINCT FROM '311'") == 0
    assert store.scalar("SELECT count(*) FROM theme_lineage WHERE source IS NULL") == 0


def test_retired_themes_answer_404(runs: Runs, store: Store) -> None:
    from api.app import create_app

    retired = sorted(retired_by_lineage(store))
    active = store.query_df("SELECT theme_id FROM themes WHERE status = 'active' AND level = 1")
    store.close()  # the API opens the store itself
    settings = Settings(
        store_path=runs.path,
        tagger_model=str(runs.path.parent / "no-tagger-here"),
        rate_limit_per_minute=10_000,
    )
    with TestClient(create_app(settings)) as client:
        for theme_id in retired:
            answer = client.get(f"/v1/themes/{theme_id}")
            assert answer.status_code == 404, (theme_id, answer.json())
        assert client.get(f"/v1/themes/{active['theme_id'].iloc[0]}").status_code == 200
        listed = {t["theme_id"] for t in client.get("/v1/themes").json()["items"]}
        assert listed and not listed & set(retired)


def test_new_records_never_join_a_retired_theme(runs: Runs, store: Store) -> None:
    retired = retired_by_lineage(store)
    placed = store.query_df(
        "SELECT a.record_id, a.theme_id, a.subtheme_id, t.status AS theme_status, "
        "s.status AS subtheme_status FROM assignments a "
        "LEFT JOIN themes t ON t.theme_id = a.theme_id "
        "LEFT JOIN themes s ON s.theme_id = a.subtheme_id "
        "WHERE a.record_id IN (SELECT unnest(?)) ORDER BY a.record_id",
        [runs.new_ids],
    )
    assert len(placed) == NEW_REQUESTS
    for row in placed.itertuples(index=False):
        assert row.theme_id not in retired and row.subtheme_id not in retired, row
        if isinstance(row.subtheme_id, str):
            assert row.theme_status == row.subtheme_status == "active", row
