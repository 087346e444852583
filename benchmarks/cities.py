"""Quality on every labelled city export: themes and tagging beside their baselines, city by city.

    nice python -m benchmarks.cities                    # five cities, newest 3,000 rows each
    nice python -m benchmarks.cities --rows 1000        # a small history
    nice python -m benchmarks.cities --city lewisham --skip-speed

Cities (every export in ../shared/data_raw with a category column): Boston (its five services'
files together; the stratified sample would not do, since it holds 400 rows per service whatever
their dates, and one service only begins in 2019), Gainesville (myGNV request types), Detroit (the resident-picked
``nature_of_issue``), Lewisham (FixMyStreet categories), Honolulu (report types). For each, the
newest ``--rows`` rows that have a text and a category, in time order; the oldest 70% are the
history, the newest 30% the later requests.

Themes (unsupervised, fitted on all the city's rows; NMI with the city's categories, unassigned
rows counted as one more cluster so that leaving hard texts out earns nothing):

- ours (``ThemeModel`` with its defaults) at the top level and the leaf (sub-theme) level;
- BERTopic with its defaults on the very same MiniLM vectors (UMAP seeded so that runs repeat);
- both fitted with ``--seeds`` seeds (3 by default: 42, 43, 44) and compared on the median NMI,
  since one seed moves either by a few hundredths (BERTopic's UMAP + HDBSCAN by up to 0.04 on
  700 rows);
- label quality, for ours and for BERTopic's c-TF-IDF names (its default name: the topic's four top
  words), over every top-level theme:
  *support*: the share of a theme's members that contain one of its label's words or a close
  variant (same first five letters), weighted by theme size; *bad labels*: the share of labels
  with a word that is a stop word (spaCy's list), the city's name, a place name (a word that
  residents write capitalised in at least 80% of its uses and that appears in the export's
  address or location column or just before "Road", "Street", "Park"...), or a filler (a word
  no more frequent among the theme's members than in the whole city: it says nothing about it).

With ``--lineage``, how well the themes keep their ids as the history grows: fitted on a random
90% of the rows and again on all of them, the share of the first fit's top themes that the second
matches as the "same" theme (``analyzer.themes.lineage``), the mean of four draws. A change that
lifts NMI by cutting the texts differently at each refit shows here.

Tagging (fitted on the history, scored on the later 30%, macro-F1 over the categories present):

- ours (``Tagger`` with times, as ``civicpulse tag train --time-col`` fits it);
- TF-IDF + LinearSVC and MiniLM embeddings + logistic regression, on the same rows and vectors;
- the review threshold: share of the later requests auto-accepted and their precision with a 95%
  bootstrap interval.

Speed (``--skip-speed`` to leave out): training the tagger on 5,000 requests with 140 categories
(the five cities' categories together, the largest split by year of filing until there are 140),
wall seconds on this machine.

Categories with one example in a history are left out of that history (none of the models can
learn from one row); the later requests keep them, so every model is scored on the same rows.
Embeddings come from ``benchmarks.common.cached_embeddings`` (the packaged all-MiniLM-L6-v2).
Writes benchmarks/results/cities.json (cities-ROWS.json for another --rows); skips (exit 0) when
../shared/data_raw is absent.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import normalized_mutual_info_score

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.common import (  # noqa: E402
    BOSTON_FILES,
    cached_embeddings,
    require_data_raw,
    write_result,
)

UNASSIGNED = "__unassigned__"


@dataclass(frozen=True)
class CityExport:
    name: str
    path: str  # under data_raw; several files (one category each) joined by ","
    text: str
    label: str
    time: str
    place: str  # address / location column, for place names
    city_words: tuple[str, ...]
    tz: str = "UTC"
    # Boston's files are one scrape per service, each over its own years: the newest rows of each
    # service, and the 70/30 split in time within each service
    per_label: bool = False


CITIES = (
    CityExport(
        "boston",
        ",".join(f"boston_open311/{f}" for f in BOSTON_FILES.values()),
        "description",
        "service_name",
        "requested_datetime",
        "address",
        ("boston", "dorchester", "roxbury"),
        per_label=True,
    ),
    CityExport(
        "gainesville",
        "gainesville_mygnv/gainesville_mygnv_311_sample_5000.csv",
        "description",
        "request_type",
        "created",
        "location_detail",
        ("gainesville", "gnv"),
        "America/New_York",
    ),
    CityExport(
        "detroit",
        "detroit_traffic_complaints/detroit_improve_detroit_traffic_complaints_2018_2025.csv",
        "description",
        "nature_of_issue",
        "created_at",
        "",
        ("detroit",),
    ),
    CityExport(
        "lewisham",
        "lewisham_fixmystreet/lewisham_fixmystreet_reports_2021_2024.csv",
        "title+detail",
        "service_name",
        "requested_datetime",
        "",
        ("lewisham", "london"),
    ),
    CityExport(
        "honolulu",
        "honolulu_311/honolulu_311_archive_subset_2011_2019.csv",
        "Description",
        "ReportType",
        "DateCreate_Converted",
        "location",
        ("honolulu", "oahu"),
        "Pacific/Honolulu",
    ),
)


# -- data --------------------------------------------------------------------------------------


def load_city(city: CityExport, rows: int) -> pd.DataFrame:
    """text, label, time, place of the newest ``rows`` rows with a text and a label, oldest first."""
    from analyzer.ingest.dates import detect_format, parse_dates

    root = require_data_raw("cities")
    df = pd.concat(
        [pd.read_csv(root / p, dtype=str, keep_default_na=False) for p in city.path.split(",")],
        ignore_index=True,
    )
    raw_time = df[city.time].where(df[city.time].str.strip() != "")
    fmt = detect_format(raw_time.dropna(), column=city.time)
    ts, _problem = parse_dates(raw_time.fillna(""), fmt, city.tz)
    out = pd.DataFrame(
        {
            "text": _text(df, city.text),
            "label": df[city.label].str.strip(),
            "time": ts,
            "place": df[city.place] if city.place else "",
        }
    )
    out = out[(out["text"] != "") & (out["label"] != "") & out["time"].notna()]
    out = out.sort_values("time", kind="stable")
    if city.per_label:
        each = max(rows // out["label"].nunique(), 1)
        out = out.groupby("label", group_keys=False).tail(each).sort_values("time", kind="stable")
    else:
        out = out.tail(rows)
    return out.reset_index(drop=True).assign(per_label=city.per_label)


def _text(df: pd.DataFrame, spec: str) -> pd.Series:
    """The export's text column, or several joined as the ingest profile joins them ("title+detail":
    FixMyStreet's resident title and detail, the title left out where the detail repeats it)."""
    cols = spec.split("+")
    text = df[cols[0]].str.strip()
    for col in cols[1:]:
        more = df[col].str.strip()
        repeats = pd.Series(
            [m.lower().startswith(t.lower()) for t, m in zip(text, more, strict=True)],
            index=df.index,
        ) & (text != "")
        text = np.where(
            repeats | (text == ""), more, np.where(more == "", text, text + ". " + more)
        )
        text = pd.Series(text, index=df.index)
    return text.str.strip()


def time_split(frame: pd.DataFrame, share: float = 0.7) -> tuple[np.ndarray, np.ndarray]:
    """(history, later): the product's split (``analyzer.tagging.measures.time_split``) at the
    ``share`` quantile of the times, within each label for per-label exports."""
    from analyzer.tagging.measures import time_split as product_split

    per_label = bool(frame["per_label"].iloc[0]) if len(frame) else False
    past, later = product_split(frame["label"], frame["time"], share, per_label=per_label)
    return past.copy(), later.copy()


# -- label quality -----------------------------------------------------------------------------

_WORD = re.compile(r"[a-z][a-z'\-]+")


def _words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def _variant(word: str) -> str:
    return word[:5] if len(word) > 5 else word


def place_words(frame: pd.DataFrame, city: CityExport) -> set[str]:
    """Words residents write capitalised (>= 80% of uses, >= 3 uses) that appear in the place
    column: street and neighbourhood names, never "pothole" or "park"-the-verb."""
    caps: dict[str, list[int]] = {}
    for text in frame["text"]:
        for i, tok in enumerate(re.findall(r"[A-Za-z][A-Za-z'\-]+", text)):
            if i == 0:
                continue
            c = caps.setdefault(tok.lower(), [0, 0])
            c[0] += tok[0].isupper() and not tok.isupper()
            c[1] += 1
    in_place = {w for p in frame["place"].astype(str) for w in _words(p)}
    # and words written just before a street word ("Malham Road", "Mountsfield Park")
    for text in frame["text"]:
        in_place.update(w.lower() for w in _BEFORE_STREET.findall(text))
    mostly_caps = {w for w, (up, n) in caps.items() if n >= 3 and up / n >= 0.8}
    return (mostly_caps & in_place) | set(city.city_words)


_BEFORE_STREET = re.compile(
    r"\b([A-Z][a-z'\-]+)\s+(?:Road|Rd|Street|St|Avenue|Ave|Lane|Ln|Park|Hill|Grove|Close|Way|Rise|"
    r"Drive|Dr|Boulevard|Blvd|Place|Pl|Terrace|Gardens|Court|Square|Highway|Hwy)\b"
)


def label_quality(
    labels: list[list[str]],
    members: list[np.ndarray],
    texts: list[str],
    city: CityExport,
    places: set[str],
) -> dict[str, Any]:
    """Support (size-weighted) and the share of bad labels, as the module docstring defines."""
    from spacy.lang.en.stop_words import STOP_WORDS

    tokens = [set(_words(t)) for t in texts]
    variants = [{_variant(w) for w in toks} for toks in tokens]
    city_share = pd.Series([v for vs in variants for v in vs]).value_counts() / max(len(texts), 1)
    support, weight, bad = 0.0, 0, 0
    reasons = {"stop": 0, "place": 0, "filler": 0}
    examples: list[str] = []
    for words, rows in zip(labels, members, strict=True):
        words = [w for w in words if w]
        if len(rows) == 0:
            continue
        want = {_variant(w) for w in words}
        hit = sum(1 for r in rows if want & variants[r])
        support += hit
        weight += len(rows)
        why = set()
        for w in words:
            v = _variant(w)
            inside = sum(1 for r in rows if v in variants[r]) / len(rows)
            if w in STOP_WORDS:
                why.add("stop")
            elif w in places:
                why.add("place")
            elif inside <= city_share.get(v, 0.0):
                why.add("filler")
        if why:
            bad += 1
            for r in why:
                reasons[r] += 1
            if len(examples) < 6:
                examples.append(f"{' '.join(words)} ({', '.join(sorted(why))})")
    n_labels = sum(1 for m in members if len(m))
    return {
        "support": round(support / weight, 4) if weight else None,
        "bad_share": round(bad / n_labels, 4) if n_labels else None,
        "bad_reasons": reasons,
        "bad_examples": examples,
    }


# -- themes ------------------------------------------------------------------------------------


def themes_part(
    frame: pd.DataFrame, emb: np.ndarray, city: CityExport, seeds: int = 3
) -> dict[str, Any]:
    """Ours and BERTopic, each fitted with ``seeds`` seeds (42, 43...): NMI is the median over
    the seeds (``*_runs`` keeps each), the rest (labels, counts) comes from seed 42, the only
    one whose themes are labelled and whose labels are scored."""
    runs = [_themes_once(frame, emb, city, 42 + i, i == 0) for i in range(max(seeds, 1))]
    out = runs[0]
    for who, keys in (("ours", ("nmi_top", "nmi_leaf")), ("bertopic", ("nmi",))):
        for key in keys:
            values = [r[who][key] for r in runs]
            out[who][f"{key}_runs"] = values
            out[who][key] = round(float(np.median(values)), 4)
    return out


def _themes_once(
    frame: pd.DataFrame, emb: np.ndarray, city: CityExport, seed: int, describe: bool
) -> dict:
    """One seed: NMI of ours and BERTopic; with ``describe`` also counts, labels and their
    quality."""
    from analyzer.themes.model import ThemeModel

    texts = frame["text"].tolist()
    truth = frame["label"].tolist()
    out: dict[str, Any] = {}

    t0 = time.perf_counter()
    model = ThemeModel(seed=seed, label=describe).fit(emb, texts)
    secs = time.perf_counter() - t0
    top = [UNASSIGNED if t is None else str(t) for t in model.labels_]
    sub = [UNASSIGNED if t is None else str(t) for t in model.sublabels_]
    tops = [th for th in model.themes_ if th.level == 1]
    subs = [th for th in model.themes_ if th.level == 2]
    top_arr, sub_arr = np.asarray(top, dtype=object), np.asarray(sub, dtype=object)
    out["ours"] = {
        "nmi_top": round(normalized_mutual_info_score(truth, top), 4),
        "nmi_leaf": round(normalized_mutual_info_score(truth, sub), 4),
    }
    places = place_words(frame, city) if describe else set()

    def quality(themes: list[Any], arr: np.ndarray) -> dict[str, Any]:
        return label_quality(
            [_words(th.label) for th in themes],
            [np.flatnonzero(arr == th.theme_id) for th in themes],
            texts,
            city,
            places,
        )

    if describe:
        out["ours"] |= {
            "unassigned": round(model.unassigned_share_, 4),
            "themes": model.n_themes_,
            "subthemes": model.n_subthemes_,
            "seconds": round(secs, 1),
            "labels_top": quality(tops, top_arr),
            "labels_leaf": quality(subs, sub_arr),
            "largest": [(th.label, th.size) for th in sorted(tops, key=lambda t: -t.size)[:10]],
        }

    from bertopic import BERTopic
    from umap import UMAP

    t0 = time.perf_counter()
    umap_model = UMAP(
        n_neighbors=15, n_components=5, min_dist=0.0, metric="cosine", random_state=seed
    )
    bt = BERTopic(embedding_model=None, umap_model=umap_model)
    topics, _ = bt.fit_transform(texts, emb)
    secs = time.perf_counter() - t0
    topics = np.asarray(topics)
    assign = [UNASSIGNED if t == -1 else str(t) for t in topics]
    ids = sorted(set(topics.tolist()) - {-1})
    names = [[w for w, _ in (bt.get_topic(t) or [])[:4]] for t in ids]
    bt_members = [np.flatnonzero(topics == t) for t in ids]
    out["bertopic"] = {"nmi": round(normalized_mutual_info_score(truth, assign), 4)}
    if not describe:
        return out
    out["bertopic"] |= {
        "unassigned": round(float((topics == -1).mean()), 4),
        "themes": len(ids),
        "seconds": round(secs, 1),
        "labels": label_quality(
            [[w for n in ws for w in _words(n)] for ws in names], bt_members, texts, city, places
        ),
        "largest": [
            ("_".join(ws), len(m))
            for ws, m in sorted(zip(names, bt_members, strict=True), key=lambda p: -len(p[1]))[:10]
        ],
    }
    return out


def lineage_part(frame: pd.DataFrame, emb: np.ndarray, draws: int = 4) -> dict[str, Any]:
    """How well themes keep their ids when the history grows: fit on 90% of the rows, fit again
    on all of them (as ``analyze`` does after a new export), match the two (``match_themes``) and
    count the earlier top themes that come back as the "same" theme; ``draws`` random 10%."""
    from analyzer.themes.lineage import match_themes, members_by_theme
    from analyzer.themes.model import ThemeModel

    texts = frame["text"].tolist()
    ids = [str(i) for i in range(len(texts))]
    after = ThemeModel(seed=42, label=False).fit(emb, texts)
    kept = []
    for draw in range(1, draws + 1):
        rng = np.random.default_rng(draw)
        new = np.zeros(len(texts), dtype=bool)
        new[rng.choice(len(texts), size=len(texts) // 10, replace=False)] = True
        before = ThemeModel(seed=42, label=False).fit(
            emb[~new], [t for t, n in zip(texts, new, strict=True) if not n]
        )
        _, events = match_themes(
            before.themes_,
            after.themes_,
            members_by_theme([i for i, n in zip(ids, new, strict=True) if not n],
                             before.labels_, before.sublabels_),
            members_by_theme(ids, after.labels_, after.sublabels_),
        )  # fmt: skip
        top = sum(t.level == 1 for t in before.themes_)
        kept.append(sum(e.event == "same" for e in events if e.level == 1) / max(top, 1))
    return {
        "ids_kept": round(float(np.mean(kept)), 4),
        "ids_kept_runs": [round(k, 4) for k in kept],
    }


# -- tagging -----------------------------------------------------------------------------------


def tagging_part(frame: pd.DataFrame, emb: np.ndarray) -> dict[str, Any]:
    from analyzer.tagging.supervised import Tagger
    from benchmarks.tagging import baselines, review_summary

    tr, te = time_split(frame)
    y = frame["label"].to_numpy(dtype=object)
    counts = pd.Series(y[tr]).value_counts()
    tr &= np.isin(y, counts[counts >= 2].index)
    texts = frame["text"].tolist()
    x_tr = [t for t, m in zip(texts, tr, strict=True) if m]
    x_te = [t for t, m in zip(texts, te, strict=True) if m]

    out: dict[str, Any] = {
        "history": int(tr.sum()),
        "later": int(te.sum()),
        "categories": len(set(y[tr])),
        "categories_later_unseen": len(set(y[te]) - set(y[tr])),
    }
    base = baselines(texts, y, emb, tr, te)
    out["tfidf_linearsvc"] = base["tfidf_linearsvc"]["macro_f1"]
    out["embeddings_logreg"] = base["embeddings_logreg"]["macro_f1"]

    t0 = time.perf_counter()
    tagger = Tagger().fit(x_tr, y[tr], embeddings=emb[tr], times=frame["time"][tr].to_numpy())
    out["fit_seconds"] = round(time.perf_counter() - t0, 1)
    rows = tagger.predict_detailed(x_te, embeddings=emb[te])
    pred = np.array([r["predicted_label"] for r in rows], dtype=object)
    from sklearn.metrics import f1_score

    out["ours"] = round(float(f1_score(y[te], pred, average="macro")), 4)
    review = review_summary(tagger, rows, y[te])
    out["review"] = {
        "threshold": review["review_threshold"],
        "auto_accepted": review["auto_accept_share_test"],
        "precision": review["auto_accept_precision_test"],
        "precision_95": review["auto_accept_precision_test_bootstrap_95"],
        "more_rows_needed": tagger.metrics_.get("more_labelled_rows_to_accept"),
    }
    return out


# -- speed -------------------------------------------------------------------------------------


def speed_part(frames: dict[str, pd.DataFrame], n_rows: int = 5000, n_cats: int = 140) -> dict:
    """Fit the tagger on ``n_rows`` requests over ``n_cats`` categories (the cities' own,
    prefixed by city), vectors from the cache."""
    from analyzer.tagging.supervised import Tagger

    parts = []
    for name, frame in frames.items():
        part = frame.assign(label=name + ": " + frame["label"])
        parts.append(part)
    pool = pd.concat(parts, ignore_index=True)
    cats = pool["label"].value_counts()
    cats = cats[cats >= 5]
    # the five cities hold about 125 categories: the largest are split by year until there are
    # ``n_cats`` (the cost of a fit is rows x categories, whatever the categories mean)
    years = pool.groupby("label")["time"].agg(lambda t: t.dt.year.nunique())
    while len(cats) < n_cats:
        several = [c for c in cats.index if years.get(c, 1) > 1]
        if not several:
            break
        big = several[0]
        rows = pool["label"] == big
        pool.loc[rows, "label"] = big + " " + pool.loc[rows, "time"].dt.year.astype(str)
        years = pool.groupby("label")["time"].agg(lambda t: t.dt.year.nunique())
        cats = pool["label"].value_counts()
        cats = cats[cats >= 5]
    keep = list(cats.index[:n_cats])
    pool = pool[pool["label"].isin(keep)]
    rng = np.random.default_rng(0)
    per = max(2, n_rows // max(len(keep), 1))
    # every category gets up to ``per`` rows, the rest filled at random
    first = pool.groupby("label", group_keys=False).head(per)
    rest = pool.drop(first.index)
    fill = rest.iloc[rng.permutation(len(rest))[: max(0, n_rows - len(first))]]
    sample = pd.concat([first, fill]).sort_values("time", kind="stable").reset_index(drop=True)
    emb = cached_embeddings("cities-speed", sample["text"].tolist())
    from analyzer.tagging.linear import default_threads

    def fit_seconds(threads: int) -> float:
        os.environ["CIVICPULSE_TRAIN_THREADS"] = str(threads)
        try:
            t0 = time.perf_counter()
            Tagger().fit(
                sample["text"].tolist(),
                sample["label"].tolist(),
                embeddings=emb,
                times=sample["time"].to_numpy(),
            )
            return round(time.perf_counter() - t0, 1)
        finally:
            os.environ.pop("CIVICPULSE_TRAIN_THREADS", None)

    threads = default_threads()
    return {
        "rows": len(sample),
        "categories": int(sample["label"].nunique()),
        # the baseline: the same fit with one thread (LinearSVC's own one-vs-rest, one core)
        "fit_seconds_one_thread": fit_seconds(1),
        "fit_seconds": fit_seconds(threads),
        "threads": threads,
        "cores": os.cpu_count(),
    }


# -- report ------------------------------------------------------------------------------------


def _f(v: Any, pct: bool = False) -> str:
    if v is None or (isinstance(v, float) and np.isnan(v)):
        return "–"
    return f"{v:.0%}" if pct else f"{v:.3f}"


def print_themes(results: dict[str, dict[str, Any]]) -> None:
    print(
        "\n== Themes: NMI with the city's categories, median over the seeds (unassigned count "
        "as one more cluster)"
    )
    head = (
        f"{'city':<12} {'rows':>5} {'ours top':>8} {'ours leaf':>9} {'BERTopic':>8} "
        f"{'BT seeds':>11} {'unassig.':>8} {'BT unas.':>8} {'themes':>6} {'subs':>5} {'BT':>4}"
    )
    print(head)
    rows = []
    for city, r in results.items():
        t = r.get("themes")
        if not t:
            continue
        o, b = t["ours"], t["bertopic"]
        rows.append((o["nmi_top"], o["nmi_leaf"], b["nmi"]))
        spread = b.get("nmi_runs", [b["nmi"]])
        print(
            f"{city:<12} {r['rows']:>5} {o['nmi_top']:>8.3f} {o['nmi_leaf']:>9.3f} "
            f"{b['nmi']:>8.3f} {min(spread):>5.3f}–{max(spread):<5.3f} "
            f"{o['unassigned']:>8.1%} {b['unassigned']:>8.1%} "
            f"{o['themes']:>6} {o['subthemes']:>5} {b['themes']:>4}"
        )
    if rows:
        m = np.mean(rows, axis=0)
        print(f"{'mean':<12} {'':>5} {m[0]:>8.3f} {m[1]:>9.3f} {m[2]:>8.3f}")
    kept = {c: r["lineage"]["ids_kept"] for c, r in results.items() if r.get("lineage")}
    if kept:
        print(
            "top themes that keep their id when the history grows by 10% (mean of 4 draws): "
            + ", ".join(f"{c} {v:.2f}" for c, v in kept.items())
            + f"; mean {np.mean(list(kept.values())):.2f}"
        )
    print("\n== Theme labels: support (members containing a label word) / bad labels")
    print(f"{'city':<12} {'ours top':>14} {'ours leaf':>14} {'BERTopic':>14}")
    for city, r in results.items():
        t = r.get("themes")
        if not t:
            continue
        cells = [t["ours"]["labels_top"], t["ours"]["labels_leaf"], t["bertopic"]["labels"]]
        print(
            f"{city:<12} "
            + " ".join(f"{_f(c['support']):>6} / {_f(c['bad_share'], True):>5}" for c in cells)
        )
        for c, who in zip(cells, ("ours top", "ours leaf", "BERTopic"), strict=True):
            if c["bad_examples"]:
                print(f"    {who}: {'; '.join(c['bad_examples'][:4])}")


def print_tagging(results: dict[str, dict[str, Any]]) -> None:
    print("\n== Tagging: macro-F1 on the later 30% (trained on the oldest 70%)")
    print(
        f"{'city':<12} {'hist':>5} {'cats':>4} {'ours':>6} {'TF-IDF':>6} {'emb+LR':>6} "
        f"{'margin':>6} {'auto':>5} {'prec':>5} {'95% interval':>13} {'fit s':>6}"
    )
    rows = []
    for city, r in results.items():
        t = r.get("tagging")
        if not t:
            continue
        best = max(t["tfidf_linearsvc"], t["embeddings_logreg"])
        rv = t["review"]
        lo, hi = rv["precision_95"]
        rows.append((t["ours"], t["tfidf_linearsvc"], t["embeddings_logreg"], t["ours"] - best))
        print(
            f"{city:<12} {t['history']:>5} {t['categories']:>4} {t['ours']:>6.3f} "
            f"{t['tfidf_linearsvc']:>6.3f} {t['embeddings_logreg']:>6.3f} "
            f"{t['ours'] - best:>+6.3f} {rv['auto_accepted']:>5.0%} {_f(rv['precision']):>5} "
            f"{_f(lo):>6}–{_f(hi):<6} {t['fit_seconds']:>6.1f}"
        )
        if rv["auto_accepted"] == 0:
            more = rv["more_rows_needed"]
            print(
                "    nothing auto-accepted at 0.95"
                + (f"; about {more:,} more labelled requests would allow it" if more else "")
            )
    if rows:
        m = np.mean(rows, axis=0)
        print(f"{'mean':<12} {'':>5} {'':>4} {m[0]:>6.3f} {m[1]:>6.3f} {m[2]:>6.3f} {m[3]:>+6.3f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=3000, help="newest rows per city")
    parser.add_argument("--city", action="append", help="only this city (repeatable)")
    parser.add_argument(
        "--seeds", type=int, default=3, help="theme fits per city (ours and BERTopic; median)"
    )
    parser.add_argument(
        "--lineage",
        action="store_true",
        help="also the share of top themes that keep their id when the history grows by 10%%",
    )
    parser.add_argument("--skip-themes", action="store_true")
    parser.add_argument("--skip-tagging", action="store_true")
    parser.add_argument("--skip-speed", action="store_true")
    parser.add_argument("--only-speed", action="store_true", help="the training speed alone")
    args = parser.parse_args(argv)
    require_data_raw("cities")
    logging.basicConfig(level=logging.WARNING)
    if args.only_speed:
        args.skip_themes = args.skip_tagging = True
    chosen = [c for c in CITIES if (not args.city or c.name in args.city) and not args.only_speed]
    results: dict[str, dict[str, Any]] = {}
    frames: dict[str, pd.DataFrame] = {}
    for city in chosen:
        frame = load_city(city, args.rows)
        frames[city.name] = frame
        emb = cached_embeddings(f"cities-{city.name}", frame["text"].tolist())
        res: dict[str, Any] = {"rows": len(frame), "categories": int(frame["label"].nunique())}
        print(f"[{city.name}] {len(frame):,} rows, {res['categories']} categories", flush=True)
        if not args.skip_themes:
            res["themes"] = themes_part(frame, emb, city, args.seeds)
        if args.lineage:
            res["lineage"] = lineage_part(frame, emb)
        if not args.skip_tagging:
            res["tagging"] = tagging_part(frame, emb)
        results[city.name] = res
    if not args.skip_themes:
        print_themes(results)
    if not args.skip_tagging:
        print_tagging(results)
    speed = None
    if not args.skip_speed:
        all_frames = {c.name: load_city(c, 20_000) for c in CITIES}
        speed = speed_part(all_frames)
        print(
            f"\n== Training speed: {speed['rows']:,} requests, {speed['categories']} categories: "
            f"{speed['fit_seconds']:.1f} s with {speed['threads']} threads on {speed['cores']} "
            f"cores (target < 60 s); one thread: {speed['fit_seconds_one_thread']:.1f} s"
        )
    name = "cities" if args.rows == 3000 else f"cities-{args.rows}"
    write_result(name, {"rows": args.rows, "cities": results, "speed": speed})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
