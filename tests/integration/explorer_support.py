"""A store holding two cities whose exports end at different dates, for the explorer's reads.

Real Boston 311 rows (texts, categories, coordinates, neighbourhoods) go through the real ingest
as two sources of kind 311: "boston" ends on 2020-04-20 with 14 weeks of history, "springfield"
ends ten months earlier with 8 weeks (too few for the emerging-needs detector). Their dates are
set here so the growth windows are known: each city has records in both of its own last two 28-day
windows. Each city's requests form one theme (written by the analysis run's own writer), and both
themes are labelled "parking", as two cities' themes of one name would be. The run's manifest
carries the detector's parameters, as a real run's does. No alert is raised.
"""

from __future__ import annotations

import csv
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tests.integration.api_support import source_rows

RUN = "20200421-000000-2c17a0"
BOSTON_END = datetime(2020, 4, 20, 12, tzinfo=UTC)
SPRINGFIELD_END = datetime(2019, 6, 30, 12, tzinfo=UTC)
# theme id -> (source, recent 28 days, previous 28 days, older, span of the older in days)
CITIES = {
    "BOSX0001": ("boston", BOSTON_END, 24, 16, 10, 98),
    "SPRX0001": ("springfield", SPRINGFIELD_END, 18, 12, 0, 0),
}
LABEL = "parking"


def _dates(end: datetime, recent: int, previous: int, older: int, span: int) -> list[datetime]:
    out = [end - timedelta(days=27 * i / max(recent - 1, 1)) for i in range(recent)]
    out += [end - timedelta(days=29 + 26 * i / max(previous - 1, 1)) for i in range(previous)]
    out += [end - timedelta(days=57 + (span - 57) * i / max(older - 1, 1)) for i in range(older)]
    return out


def build_two_city_store(folder: Path) -> Path:
    """The store (closed); see the module's docstring."""
    from analyzer.ingest import IngestOptions, ingest_file
    from analyzer.store.database import Store
    from analyzer.store.writers import write_themes
    from analyzer.trends.detector import EmergingDetector
    from tests.integration.api_support import theme_row

    rows = [r for r in source_rows(per_service=20) if r.get("lat") and r.get("long")]
    path = folder / "two_cities.duckdb"
    assignments = []
    with Store(path) as store:
        start = 0
        for tid, (source, end, recent, previous, older, span) in CITIES.items():
            dates = _dates(end, recent, previous, older, span)
            part = rows[start : start + len(dates)]
            start += len(dates)
            assert len(part) == len(dates), "not enough Boston rows with coordinates"
            csv_path = folder / f"{source}.csv"
            with csv_path.open("w", encoding="utf-8", newline="") as fh:
                out = csv.writer(fh)
                out.writerow(["id", "description", "opened", "type", "lat", "long", "district"])
                for row, when in zip(part, dates, strict=True):
                    out.writerow(
                        [
                            row["service_request_id"],
                            row["description"],
                            when.isoformat(),
                            row["service_name"],
                            row["lat"],
                            row["long"],
                            (row.get("address") or "").rpartition(",")[2].strip(),
                        ]
                    )
            options = IngestOptions(
                profile="csv",
                id_col="id",
                text_cols=("description",),
                time_col="opened",
                label_col="type",
                lat_col="lat",
                lon_col="long",
                area_col="district",
                source=source,
                kind="311",
            )
            report = ingest_file(store, csv_path, options=options, progress=False)
            assert report.rows_loaded == len(dates), report
            ids = store.query_df("SELECT id FROM records WHERE source = ?", [source])["id"]
            assignments += [
                {"record_id": rid, "theme_id": tid, "subtheme_id": None, "x": None, "y": None}
                for rid in ids
            ]
        import pandas as pd

        frame = pd.DataFrame(assignments).assign(run_id=RUN)
        themes = [
            theme_row(
                {
                    "theme_id": tid,
                    "level": 1,
                    "label": LABEL,
                    "keywords": '["parking"]',
                    "size": int((frame["theme_id"] == tid).sum()),
                    "examples": "[]",
                    "breakdown": "{}",
                    "status": "active",
                    "run_id": RUN,
                    "source": source,
                }
            )
            for tid, (source, *_rest) in CITIES.items()
        ]
        manifest = {
            "run_id": RUN,
            "parameters": {"emerging": EmergingDetector(period="W", windows=4).get_params()},
            "fixture": "tests/integration/explorer_support",
        }
        store.start_run(RUN, "analyze", manifest)
        with store.transaction() as con:
            write_themes(
                con,
                {"themes": themes, "assignments": [frame], "lineage": [], "per_source": {}},
                RUN,
            )
        store.update_run(RUN, status="done", progress=1.0, message="done", manifest=manifest)
    return path
