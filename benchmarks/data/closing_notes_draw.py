"""Draw the closing notes of benchmarks/data/boston_closing_notes.csv (labelled separately, by an
AI coding agent: see boston_closing_notes.md).

    python benchmarks/data/closing_notes_draw.py            # write the file (labels left empty)
    python benchmarks/data/closing_notes_draw.py --check    # redraw in memory, compare the notes

Per Boston service, closed requests with a non-empty ``status_notes`` are shuffled (seed 20) and
walked in that order; a note whose exact text was already drawn is skipped, until the service's
quota of distinct notes is reached (Unsafe Dangerous Conditions has fewer distinct notes than its
quota: all of them are taken). Common templates are therefore drawn once each and the rest of the
quota reaches into the long tail of hand-written notes. Each note is cleaned and redacted exactly
as ingest stores it (``cap_values``, ``strip_markup_values``, ``redact_many``), so the set is what
the classifier meets in a store. ``requests_with_note`` counts the closed requests of the five
services whose note is exactly this text (the note's weight among all closed requests).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from benchmarks.common import BOSTON_FILES, require_data_raw  # noqa: E402

OUT = ROOT / "benchmarks" / "data" / "boston_closing_notes.csv"
SERVICES = (
    "Illegal Parking",
    "Other",
    "Sidewalk Not Shoveled",
    "Abandoned Vehicle",
    "Unsafe Dangerous Conditions",
)
# (draw, seed, distinct notes per service in SERVICES' order). "dev" was read while the rules
# were written and is not labelled; it is drawn only so that the later draws leave its notes out.
DRAWS = (
    ("main", 20, (130, 200, 110, 110, 40)),
    ("dev", 21, (60, 120, 60, 60, 0)),
    ("holdout_1", 22, (45, 80, 35, 40, 0)),
    ("holdout_2", 23, (50, 90, 40, 45, 0)),
)
COLUMNS = ["draw", "service", "service_request_id", "requests_with_note", "status_notes", "label"]


def closed_requests() -> pd.DataFrame:
    base = require_data_raw("closing_notes") / "boston_open311"
    frames = []
    for service, name in BOSTON_FILES.items():
        df = pd.read_csv(
            base / name,
            dtype=str,
            usecols=["service_request_id", "status", "service_name", "status_notes"],
        )
        df["service"] = service
        frames.append(df)
    df = pd.concat(frames, ignore_index=True)
    notes = df["status_notes"].fillna("").astype(str)
    return df[(df["status"].str.lower() == "closed") & (notes.str.strip() != "")].reset_index(
        drop=True
    )


def draw() -> pd.DataFrame:
    from analyzer.ingest.clean import cap_values, strip_markup_values
    from analyzer.ingest.privacy.redact import redact_many

    df = closed_requests()
    weight = df["status_notes"].value_counts()
    used: set[str] = set()  # notes of earlier draws are not drawn again
    rows = []
    for name, seed, quotas in DRAWS:
        drawn: set[str] = set()
        for service, quota in zip(SERVICES, quotas, strict=True):
            part = df[df["service"] == service]
            order = np.random.default_rng(seed).permutation(len(part))
            seen = set(used)
            taken = 0
            for i in order:
                if taken == quota:
                    break
                note = str(part["status_notes"].iloc[i])
                if note in seen:
                    continue
                seen.add(note)
                drawn.add(note)
                taken += 1
                rows.append(
                    {
                        "draw": name,
                        "service": service,
                        "service_request_id": str(part["service_request_id"].iloc[i]),
                        "requests_with_note": int(weight[note]),
                        "raw": note,
                    }
                )
        used |= drawn
    out = pd.DataFrame(rows)
    out = out[out["draw"] != "dev"].reset_index(drop=True)
    cleaned = strip_markup_values(cap_values(out["raw"].astype(str)))
    out["status_notes"] = [r.text for r in redact_many(cleaned.tolist())]
    out["label"] = ""
    return out[COLUMNS]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="compare with the committed file")
    args = ap.parse_args()
    drawn = draw()
    if args.check:
        have = pd.read_csv(OUT, dtype=str, keep_default_na=False)
        same = have[COLUMNS[:-1]].astype(str).equals(drawn[COLUMNS[:-1]].astype(str))
        print(f"{OUT.name}: {'same notes' if same else 'DIFFERENT notes'} ({len(drawn)} drawn)")
        return 0 if same else 1
    if OUT.exists():
        # keep labels already given to the same notes
        have = pd.read_csv(OUT, dtype=str, keep_default_na=False)
        labels = dict(zip(have["service_request_id"], have["label"], strict=True))
        drawn["label"] = drawn["service_request_id"].map(labels).fillna("")
    drawn.to_csv(OUT, index=False)
    print(f"wrote {OUT.relative_to(ROOT)}: {len(drawn)} notes")
    print(pd.crosstab(drawn["service"], drawn["draw"]).to_string())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
