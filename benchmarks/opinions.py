"""Opinion groups benchmark: ours beside red-dwarf 0.4.0 (a Python re-implementation of the Polis
pipeline), on every Polis conversation in ../shared/data_raw/polis_opendata with a vote matrix.

For each conversation, in one process, from the same votes:

- agreement with Polis's own groups (the export's ``group-id``): adjusted Rand index over the
  participants both put in a group;
- stability under participant resampling: 5 resamples of 80 % of the participants (seeded), each
  refitted with another seed; the adjusted Rand index between the resample's groups and the full
  fit's, over the participants both put in a group, averaged;
- the number of groups, and the wall time of one fit from the long vote list (matrix included);
- ours in three settings: ``civicpulse`` (the default: k-means on participants with restarts,
  up to 8 groups chosen by silhouette, agree/disagree-to-everything participants left out of the
  groups), ``civicpulse-keep`` (the same, those participants kept) and ``polis`` (Polis's base
  clusters, at most 5 groups).

Then the group-informed consensus with the export's own groups against Polis's published
``group-informed-consensus`` (bg2050-volunteers), and the speed target: the two largest vote
matrices analysed in under 5 s each.

    nice python -m benchmarks.opinions   # prints, writes benchmarks/results/opinions.json

Exits 0 with a "skipped" line when ../shared/data_raw is absent.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import adjusted_rand_score

from analyzer.opinions import OpinionModel, VoteMatrix, read_export
from benchmarks.common import require_data_raw, write_result

RESAMPLES = 5
SHARE = 0.8
SEED = 42
SPEED_TARGET_S = 5.0
OURS = {
    "civicpulse": {},
    "civicpulse-keep": {"exclude_uniform": False},
    "polis": {"method": "polis"},
}

Fitter = Callable[[pd.DataFrame, VoteMatrix, int], np.ndarray]


def long_votes(matrix: VoteMatrix) -> pd.DataFrame:
    rows, cols = np.nonzero(np.isfinite(matrix.votes))
    return pd.DataFrame(
        {
            "participant_id": matrix.participant_ids[rows],
            "statement_id": matrix.statement_ids[cols],
            "vote": matrix.votes[rows, cols].astype(int),
        }
    )


def ours(params: dict[str, Any]) -> Fitter:
    def fit(votes: pd.DataFrame, full: VoteMatrix, seed: int) -> np.ndarray:
        matrix = VoteMatrix.from_long(votes, statement_ids=full.statement_ids.tolist())
        matrix = matrix.with_moderated_out(full.statement_ids[full.moderated_out].tolist())
        labels = OpinionModel(**params, seed=seed).fit(matrix).labels_
        return (
            pd.Series(labels, index=matrix.participant_ids)
            .reindex(full.participant_ids, fill_value=-1)
            .to_numpy()
        )

    return fit


def red_dwarf(votes: pd.DataFrame, full: VoteMatrix, seed: int) -> np.ndarray:
    from reddwarf.implementations.polis import run_pipeline

    records = [
        {"participant_id": p, "statement_id": s, "vote": v, "modified": 0}
        for p, s, v in votes.itertuples(index=False, name=None)
    ]
    moderated = full.statement_ids[full.moderated_out].tolist()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = run_pipeline(votes=records, mod_out_statement_ids=moderated, random_state=seed)
    labels = result.participants_df["cluster_id"]
    return labels.reindex(full.participant_ids).astype("Int64").fillna(-1).astype(int).to_numpy()


def ari_grouped(a: np.ndarray, b: np.ndarray) -> float | None:
    both = (a >= 0) & (b >= 0)
    if both.sum() < 2:
        return None
    return float(adjusted_rand_score(a[both], b[both]))


def measure(fit: Fitter, matrix: VoteMatrix) -> dict[str, Any]:
    votes = long_votes(matrix)
    t0 = time.perf_counter()
    labels = fit(votes, matrix, SEED)
    seconds = time.perf_counter() - t0
    source = matrix.source_groups
    rng = np.random.default_rng(SEED)
    people = matrix.participant_ids
    scores = []
    for rep in range(RESAMPLES):
        keep = rng.choice(len(people), int(SHARE * len(people)), replace=False)
        chosen = set(people[keep].tolist())
        sub = votes[votes["participant_id"].isin(chosen)]
        sub_labels = fit(sub, matrix, SEED + rep + 1)
        score = ari_grouped(labels[keep], sub_labels[keep])
        if score is not None:
            scores.append(score)
    return {
        "groups": len(set(labels[labels >= 0].tolist())),
        "grouped": int((labels >= 0).sum()),
        "ari_vs_polis": ari_grouped(source, labels) if source is not None else None,
        "stability_ari": float(np.mean(scores)) if scores else None,
        "seconds": round(seconds, 3),
    }


def gic_check(folder: Any) -> dict[str, Any]:
    conv = read_export(folder)
    model = OpinionModel(use_source_groups=True).fit(conv.matrix)
    published = pd.read_csv(folder / "comments.csv").set_index("comment-id")[
        "group-informed-consensus"
    ]
    ours_gic = pd.Series(model.gic_, index=conv.matrix.statement_ids)
    common = published.index.intersection(ours_gic.index)
    diff = (ours_gic.loc[common] - published.loc[common]).abs()
    return {"comments": len(common), "max_abs_difference": float(diff.max())}


def main() -> None:
    raw = require_data_raw("opinions")
    try:
        import reddwarf  # noqa: F401  (the baseline: installed by `pip install -e ".[bench]"`)
    except ImportError:
        raise SystemExit(
            "[opinions] red-dwarf is not installed: pip install -e '.[bench]'"
        ) from None
    base = raw / "polis_opendata"
    folders = [
        f
        for f in sorted(base.iterdir())
        if (f / "participants-votes.csv").is_file() or (f / "votes.csv").is_file()
    ]
    fitters: dict[str, Fitter] = {name: ours(p) for name, p in OURS.items()}
    fitters["red-dwarf"] = red_dwarf
    rows: list[dict[str, Any]] = []
    for folder in folders:
        conv = read_export(folder)
        n_p, n_s = conv.matrix.shape
        polis_k = (
            len(set(conv.matrix.source_groups[conv.matrix.source_groups >= 0].tolist()))
            if conv.matrix.source_groups is not None
            else None
        )
        row: dict[str, Any] = {
            "conversation": folder.name,
            "participants": n_p,
            "statements": n_s,
            "votes": conv.matrix.n_votes,
            "polis_groups": polis_k,
        }
        for name, fit in fitters.items():
            row[name] = measure(fit, conv.matrix)
        rows.append(row)
        cells = " | ".join(
            f"{name} k={r['groups']} ari={_f(r['ari_vs_polis'])} stab={_f(r['stability_ari'])} "
            f"{r['seconds']:.2f}s"
            for name in fitters
            for r in [row[name]]
        )
        print(f"{folder.name[:34]:34} {n_p:>5}x{n_s:<5} polis k={polis_k} | {cells}", flush=True)
    summary = {
        name: {
            "mean_ari_vs_polis": _mean(r[name]["ari_vs_polis"] for r in rows),
            "mean_stability_ari": _mean(r[name]["stability_ari"] for r in rows),
            "total_seconds": round(sum(r[name]["seconds"] for r in rows), 2),
        }
        for name in fitters
    }
    largest = sorted(rows, key=lambda r: -r["participants"] * r["statements"])[:2]
    speed = {
        r["conversation"]: {
            "shape": [r["participants"], r["statements"]],
            "ours_seconds": r["civicpulse"]["seconds"],
            "polis_mode_seconds": r["polis"]["seconds"],
            "red_dwarf_seconds": r["red-dwarf"]["seconds"],
            "under_target": r["civicpulse"]["seconds"] < SPEED_TARGET_S,
        }
        for r in largest
    }
    gic = gic_check(base / "bg2050-volunteers") if (base / "bg2050-volunteers").is_dir() else None
    print()
    print(f"{'method':16} {'mean ARI vs Polis':>18} {'mean stability':>15} {'total s':>8}")
    for name, s in summary.items():
        print(
            f"{name:16} {_f(s['mean_ari_vs_polis']):>18} {_f(s['mean_stability_ari']):>15} "
            f"{s['total_seconds']:>8.2f}"
        )
    for name, s in speed.items():
        print(
            f"speed {name} {s['shape'][0]}x{s['shape'][1]}: ours {s['ours_seconds']:.2f}s "
            f"(target < {SPEED_TARGET_S:.0f}s: {'met' if s['under_target'] else 'MISSED'}), "
            f"polis mode {s['polis_mode_seconds']:.2f}s, red-dwarf {s['red_dwarf_seconds']:.2f}s"
        )
    if gic:
        print(
            f"GIC with the export's groups vs Polis's published values (bg2050-volunteers): "
            f"{gic['comments']} comments, max |difference| {gic['max_abs_difference']:.2e}"
        )
    write_result(
        "opinions",
        {
            "resamples": RESAMPLES,
            "resample_share": SHARE,
            "seed": SEED,
            "baseline": "red-dwarf 0.4.0 (reddwarf.implementations.polis.run_pipeline)",
            "conversations": rows,
            "summary": summary,
            "speed": speed,
            "gic_bg2050": gic,
        },
    )


def _f(value: float | None) -> str:
    return "–" if value is None else f"{value:.3f}"


def _mean(values: Any) -> float | None:
    got = [v for v in values if v is not None]
    return round(float(np.mean(got)), 4) if got else None


if __name__ == "__main__":
    main()
