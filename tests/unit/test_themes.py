"""Themes and labels on real Boston 311 texts (tests/fixtures/themes: PII-free, with embeddings)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analyzer.common.vectors import normalise_rows
from analyzer.themes.examples import representative_rows, representative_texts
from analyzer.themes.grouping import ward_groups
from analyzer.themes.labels import (
    ThemeLabel,
    clean_for_labels,
    ctfidf,
    describe_classes,
    extract_terms,
    find_template_keys,
    make_unique,
)
from analyzer.themes.lineage import match_themes, members_by_theme, next_free_ids
from analyzer.themes.model import (
    MIN_CENTROID_COSINE,
    Theme,
    ThemeModel,
    cluster_texts,
)

FIXTURE = Path(__file__).parents[1] / "fixtures" / "themes"
# street-light requests: the second class beside the one a labelling test is about
LIGHTS = [
    "Street light out on the corner.",
    "The street light is out again.",
    "Street lights out along the whole block.",
    "Broken street light near the school.",
]
PLACEHOLDER = re.compile(r"\[[A-Z_]+\]")


@pytest.fixture(scope="module")
def sample() -> tuple[pd.DataFrame, np.ndarray]:
    df = pd.read_csv(FIXTURE / "boston_311_sample.csv", dtype={"id": str})
    emb = np.load(FIXTURE / "boston_311_sample_minilm.npy").astype(np.float32)
    assert len(df) == len(emb)
    return df, emb


@pytest.fixture(scope="module")
def fitted(sample: tuple[pd.DataFrame, np.ndarray]) -> ThemeModel:
    df, emb = sample
    meta = pd.DataFrame(
        {
            "category": df["category"],
            "source": "boston",
            "sentiment_score": np.linspace(-1, 1, len(df)),
        }
    )
    return ThemeModel(seed=42).fit(emb, df["text"].tolist(), meta=meta)


# -- ThemeModel ---------------------------------------------------------------------------------
def test_fit_shape_and_limits(fitted: ThemeModel) -> None:
    tops = [t for t in fitted.themes_ if t.level == 1]
    subs = [t for t in fitted.themes_ if t.level == 2]
    assert 2 <= len(tops) <= 40
    assert fitted.n_themes_ == len(tops) and fitted.n_subthemes_ == len(subs)
    unassigned = np.array([v is None for v in fitted.labels_])
    assert unassigned.mean() <= 0.10
    assert fitted.unassigned_share_ == pytest.approx(unassigned.mean())
    # sizes add up, and sub-themes nest inside their parents
    assert sum(t.size for t in tops) == (~unassigned).sum()
    for top in tops:
        kids = [s for s in subs if s.parent_id == top.theme_id]
        assert kids, f"{top.theme_id} has no sub-themes"
        # siblings left side by side are not near-duplicates (merge_near_duplicates)
        for i, a in enumerate(kids):
            for b in kids[i + 1 :]:
                assert float(a.centroid @ b.centroid) < 0.95, (a.label, b.label)
        assert sum(k.size for k in kids) == top.size
        assert all(k.theme_id.startswith(top.theme_id + ".") for k in kids)
    for top_id, sub_id in zip(fitted.labels_, fitted.sublabels_, strict=True):
        assert (top_id is None) == (sub_id is None)
        if sub_id is not None:
            assert sub_id.rsplit(".", 1)[0] == top_id
    assert re.fullmatch(r"T\d{4}", tops[0].theme_id)


def test_themes_follow_city_categories(
    fitted: ThemeModel, sample: tuple[pd.DataFrame, np.ndarray]
) -> None:
    from sklearn.metrics import normalized_mutual_info_score

    df, _ = sample
    pred = ["-" if v is None else v for v in fitted.labels_]
    # the city's five services are far from random with respect to the themes (random labels: ~0.1)
    assert normalized_mutual_info_score(df["category"], pred) > 0.3


def test_labels_examples_breakdown(
    fitted: ThemeModel, sample: tuple[pd.DataFrame, np.ndarray]
) -> None:
    df, _ = sample
    texts = set(df["text"])
    for th in fitted.themes_:
        assert th.label.strip() and th.label != th.theme_id
        assert not PLACEHOLDER.search(th.label)
        assert not any(PLACEHOLDER.search(k) for k in th.keywords)
        assert 1 <= len(th.examples) <= 5 and set(th.examples) <= texts
        assert len(set(th.examples)) == len(th.examples)
        assert sum(th.breakdown["category"].values()) == th.size
        assert th.breakdown["source"] == {"boston": th.size}
        assert th.sentiment is not None and -1 <= th.sentiment <= 1
        assert th.centroid.shape == (384,) and abs(np.linalg.norm(th.centroid) - 1) < 1e-4
    # unique among siblings (top level together, sub-themes within each parent)
    groups: dict[str | None, list[str]] = {}
    for th in fitted.themes_:
        groups.setdefault(th.parent_id, []).append(th.label)
    for names in groups.values():
        assert len(names) == len(set(names))
    labels = " ".join(th.label for th in fitted.themes_ if th.level == 1)
    assert "abandon" in labels or "snow" in labels or "sidewalk" in labels


def test_examples_are_members(fitted: ThemeModel, sample: tuple[pd.DataFrame, np.ndarray]) -> None:
    df, _ = sample
    for th in fitted.themes_:
        ids = fitted.labels_ if th.level == 1 else fitted.sublabels_
        members = set(df["text"][np.equal(ids, th.theme_id)])
        assert set(th.examples) <= members


def test_transform_joins_the_nearest_subtheme(
    fitted: ThemeModel, sample: tuple[pd.DataFrame, np.ndarray]
) -> None:
    """The one rule for new texts: the sub-theme with the nearest centroid (cosine), and its
    parent, when the cosine is at least MIN_CENTROID_COSINE; else unassigned."""
    _, emb = sample
    top, sub = fitted.transform(emb)
    subs = [t for t in fitted.themes_ if t.level == 2]
    sims = normalise_rows(emb) @ normalise_rows(np.stack([t.centroid for t in subs])).T
    best, near = sims.argmax(axis=1), sims.max(axis=1) >= MIN_CENTROID_COSINE
    assert list(sub) == [subs[i].theme_id if ok else None for i, ok in zip(best, near, strict=True)]
    parent = {t.theme_id: t.parent_id for t in subs}
    assert list(top) == [None if s is None else parent[s] for s in sub]
    # the fit's own rows mostly land where the fit put them
    fitted_rows = [s for s in fitted.sublabels_ if s is not None]
    same = [a == b for a, b in zip(sub, fitted.sublabels_, strict=True) if b is not None]
    assert len(same) == len(fitted_rows) and np.mean(same) >= 0.6


def test_model_rebuilt_from_stored_themes_places_texts_alike(
    fitted: ThemeModel, sample: tuple[pd.DataFrame, np.ndarray]
) -> None:
    _, emb = sample
    rebuilt = ThemeModel.from_themes(fitted.themes_)
    assert rebuilt.n_themes_ == fitted.n_themes_ and rebuilt.n_subthemes_ == fitted.n_subthemes_
    for got, want in zip(rebuilt.transform(emb), fitted.transform(emb), strict=True):
        assert list(got) == list(want)
    # nothing is close enough: every text stays unassigned
    strict = ThemeModel.from_themes(fitted.themes_, min_cosine=1.01)
    assert all(v is None for part in strict.transform(emb[:50]) for v in part)
    # no themes, or no texts: nothing to place
    assert all(v is None for v in ThemeModel.from_themes([]).transform(emb[:3])[1])
    assert [len(part) for part in rebuilt.transform(emb[:0])] == [0, 0]


def test_example_selector_is_central_diverse_and_once_per_text() -> None:
    center = np.array([1.0, 0.0, 0.0], dtype=np.float32)
    vectors = normalise_rows(
        np.array([[0.95, 0.31, 0], [0.95, 0.32, 0], [0.94, 0.34, 0], [0.9, -0.2, 0.39]])
    )
    texts = ["Pothole on Main", "pothole on  main", "Pothole on Main St", "graffiti on the wall"]
    # the most central first; the same text again (case, spaces) never; then a different text
    # rather than a near-copy of the first, unless diversity counts for nothing
    assert representative_rows(vectors, center, texts, 2) == [0, 3]
    assert representative_rows(vectors, center, texts, 2, diversity=0.0) == [0, 2]
    assert representative_texts(vectors, center, texts, 5) == [texts[0], texts[3], texts[2]]
    assert representative_rows(vectors[:0], center, [], 5) == []


def test_deterministic_for_a_seed(sample: tuple[pd.DataFrame, np.ndarray]) -> None:
    df, emb = sample
    # every other row keeps all five services and halves the cost of two labelled fits
    texts, emb = df["text"].tolist()[::2], emb[::2]
    a = ThemeModel(seed=7).fit(emb, texts)
    b = ThemeModel(seed=7).fit(emb, texts)
    assert list(a.labels_) == list(b.labels_)
    assert list(a.sublabels_) == list(b.sublabels_)
    assert [(t.theme_id, t.label, t.keywords, t.examples) for t in a.themes_] == [
        (t.theme_id, t.label, t.keywords, t.examples) for t in b.themes_
    ]


def test_small_and_empty_inputs(sample: tuple[pd.DataFrame, np.ndarray]) -> None:
    df, emb = sample
    model = ThemeModel(label=False).fit(emb[:0], [])
    assert model.themes_ == [] and len(model.labels_) == 0
    model = ThemeModel(label=False).fit(emb[:3], df["text"].tolist()[:3])
    assert all(v is not None for v in model.labels_)
    # without meta there is nothing to break down
    assert all(t.breakdown == {} and t.sentiment is None for t in model.themes_)
    with pytest.raises(ValueError):
        ThemeModel().fit(emb[:3], ["only one text"])


def test_ward_groups_respects_limits() -> None:
    rng = np.random.default_rng(0)
    centers = rng.normal(size=(60, 8))
    weights = rng.integers(1, 50, size=60).astype(float)
    groups = ward_groups(centers, weights, max_groups=7, min_size=100)
    sizes = np.bincount(groups, weights=weights)
    assert len(sizes) <= 7 and sizes.min() >= 100
    # two far-apart blobs are never merged while the limit allows them apart
    blob = np.vstack([rng.normal(0, 0.01, (5, 2)), rng.normal(10, 0.01, (5, 2))])
    groups = ward_groups(blob, np.ones(10), max_groups=2, min_size=1)
    assert len(set(groups[:5])) == 1 and len(set(groups[5:])) == 1 and groups[0] != groups[5]


# -- stable ids ------------------------------------------------------------------------------
def test_ids_persist_across_refit_with_new_rows(sample: tuple[pd.DataFrame, np.ndarray]) -> None:
    df, emb = sample
    rng = np.random.default_rng(1)
    new = np.zeros(len(df), dtype=bool)
    new[rng.choice(len(df), size=len(df) // 10, replace=False)] = True
    ids = df["id"].tolist()
    old_ids = [i for i, n in zip(ids, new, strict=True) if not n]
    before = ThemeModel(seed=42, label=False).fit(emb[~new], df["text"][~new].tolist())
    after = ThemeModel(seed=42, label=False).fit(emb, df["text"].tolist())
    id_map, lineage = match_themes(
        before.themes_,
        after.themes_,
        members_by_theme(old_ids, before.labels_, before.sublabels_),
        members_by_theme(ids, after.labels_, after.sublabels_),
    )
    prev_top = {t.theme_id for t in before.themes_ if t.level == 1}
    cur_top = {id_map[t.theme_id] for t in after.themes_ if t.level == 1}
    # most themes keep their id
    assert len(prev_top & cur_top) >= 0.6 * len(prev_top)
    # every current theme has exactly one lineage event, every dropped id is retired
    events = {(e.theme_id, e.level): e for e in lineage if e.event != "retired"}
    assert {tid for tid, lvl in events if lvl == 1} == cur_top
    retired = {e.theme_id for e in lineage if e.event == "retired" and e.level == 1}
    assert retired == prev_top - cur_top
    assert all(e.event in {"same", "merged", "split", "new", "retired"} for e in lineage)
    assert sum(e.event == "same" for e in lineage if e.level == 1) >= 0.5 * len(prev_top)
    # the renamed themes are consistent
    assert {id_map[t] for t in after.labels_ if t is not None} == cur_top
    assert all(id_map[s.parent_id] in cur_top for s in after.themes_ if s.level == 2)


def test_planted_theme_shows_up_as_new(sample: tuple[pd.DataFrame, np.ndarray]) -> None:
    """Snow complaints absent from the first run and present in the second come out as "new"."""
    df, emb = sample
    snow = (df["category"] == "Sidewalk Not Shoveled").to_numpy()
    ids = df["id"].tolist()
    before = ThemeModel(seed=42, label=False).fit(emb[~snow], df["text"][~snow].tolist())
    after = ThemeModel(seed=42, label=False).fit(emb, df["text"].tolist())
    old_ids = [i for i, s in zip(ids, snow, strict=True) if not s]
    id_map, lineage = match_themes(
        before.themes_,
        after.themes_,
        members_by_theme(old_ids, before.labels_, before.sublabels_),
        members_by_theme(ids, after.labels_, after.sublabels_),
    )
    new_ids = {e.theme_id for e in lineage if e.event == "new" and e.level == 1}
    assert new_ids
    # the new themes are mostly snow (at least three times snow's 20% share of the texts), and
    # a large part of the snow texts are in new themes (the rest join the sidewalk and ice
    # themes they resemble). On 349 texts both vary with the seed: seeds 1-8, with the top-theme
    # count chosen by stability or by the sqrt(n) / 2 rule, purity 0.83-1.0 and recall 0.44-0.89
    # (earlier fine-cluster counts: 0.52-1.0 and 0.41-0.81); seed 42 is the product's default.
    renamed = np.array([None if t is None else id_map[t] for t in after.labels_], dtype=object)
    in_new = np.isin(renamed.astype(str), list(new_ids))
    assert snow[in_new].mean() >= 0.6
    assert in_new[snow].mean() >= 0.4
    # fresh ids continue after the previous ones
    highest_before = max(int(t.theme_id[1:5]) for t in before.themes_)
    assert all(int(t[1:5]) > highest_before for t in new_ids)


def _theme(tid: str, centroid: np.ndarray, level: int = 1, parent: str | None = None) -> Theme:
    c = np.asarray(centroid, dtype=np.float32)
    return Theme(tid, parent, level, tid, [], 0, [], centroid=c / np.linalg.norm(c))


def _unit(i: int, dim: int = 16, mix: dict[int, float] | None = None) -> np.ndarray:
    v = np.zeros(dim)
    v[i] = 1.0
    for j, w in (mix or {}).items():
        v[j] += w
    return v


def test_merge_split_same_new_retired_constructed() -> None:
    prev = [
        _theme("T0001", _unit(0)),  # stays
        _theme("T0002", _unit(1)),  # merges with T0003
        _theme("T0003", _unit(2)),
        _theme("T0004", _unit(3)),  # splits
        _theme("T0005", _unit(4)),  # disappears
    ]
    prev_members = {
        "T0001": set(range(0, 100)),
        "T0002": set(range(100, 160)),
        "T0003": set(range(160, 200)),
        "T0004": set(range(200, 300)),
        "T0005": set(range(300, 350)),
    }
    cur = [
        _theme("T0001", _unit(0)),
        _theme("T0002", _unit(1, mix={2: 0.8})),
        _theme("T0003", _unit(3, mix={5: 0.5})),
        _theme("T0004", _unit(3, mix={6: 0.5})),
        _theme("T0005", _unit(7)),
    ]
    cur_members = {
        "T0001": set(range(0, 100)),
        "T0002": set(range(100, 200)),
        "T0003": set(range(200, 250)),
        "T0004": set(range(250, 300)),
        "T0005": set(range(400, 450)) | {305},  # only new records (plus one stray)
    }
    id_map, lineage = match_themes(prev, cur, prev_members, cur_members, used_ids=["T0009"])
    ev = {(e.theme_id, e.event): e.related for e in lineage}
    assert id_map["T0001"] == "T0001" and ("T0001", "same") in ev
    merged_id = id_map["T0002"]
    assert merged_id == "T0002"  # the larger source keeps its id
    assert ev[(merged_id, "merged")] == ("T0002", "T0003")
    assert ev[("T0003", "retired")] == (merged_id,)
    split_ids = {id_map["T0003"], id_map["T0004"]}
    assert "T0004" in split_ids  # one half keeps the old id, the other gets a fresh one
    for sid in split_ids:
        assert ev[(sid, "split")] == ("T0004",)
    fresh = split_ids - {"T0004"}
    # fresh ids start after every id ever used, including retired T0009
    assert fresh == {"T0010"}
    assert id_map["T0005"] == "T0011" and (id_map["T0005"], "new") in ev
    assert ("T0005", "retired") in ev


def test_match_by_centroid_only() -> None:
    prev = [_theme("T0001", _unit(0)), _theme("T0002", _unit(1)), _theme("T0003", _unit(2))]
    cur = [
        _theme("T0001", _unit(1, mix={0: 0.1})),
        _theme("T0002", _unit(0, mix={1: 0.1})),
        _theme("T0003", _unit(9)),
    ]
    id_map, lineage = match_themes(prev, cur, next_id=12)
    assert id_map == {"T0001": "T0002", "T0002": "T0001", "T0003": "T0012"}
    events = {(e.theme_id, e.event) for e in lineage}
    assert {("T0001", "same"), ("T0002", "same"), ("T0012", "new"), ("T0003", "retired")} <= events


def test_subtheme_ids_follow_parent_and_never_reuse() -> None:
    prev = [
        _theme("T0003", _unit(0)),
        _theme("T0003.01", _unit(1), 2, "T0003"),
        _theme("T0003.04", _unit(2), 2, "T0003"),
    ]
    cur = [
        _theme("T0001", _unit(0)),
        _theme("T0001.01", _unit(2), 2, "T0001"),
        _theme("T0001.02", _unit(5), 2, "T0001"),
    ]
    id_map, lineage = match_themes(prev, cur)
    assert id_map == {"T0001": "T0003", "T0001.01": "T0003.04", "T0001.02": "T0003.05"}
    assert ("T0003.01", "retired") in {(e.theme_id, e.event) for e in lineage}
    assert next_free_ids(["T0003", "T0003.04", "T0007.02", "bogus"]) == (
        8,
        {"T0003": 5, "T0007": 3},
    )


# -- cluster_texts (the `civicpulse cluster` contract) -------------------------------------------
def test_cluster_texts_columns(sample: tuple[pd.DataFrame, np.ndarray]) -> None:
    df, emb = sample
    out = cluster_texts(df["text"].tolist(), emb, seed=42, label=False)
    assert list(out.columns) == ["theme_id", "theme_label", "parent_theme_id", "parent_theme_label"]
    assert len(out) == len(df)
    unassigned = out["theme_id"] == ""
    assert (out.loc[unassigned, "theme_label"] == "unassigned").all()
    assert (out.loc[unassigned, "parent_theme_id"] == "").all()
    assigned = out[~unassigned]
    assert (assigned["theme_id"].str.rsplit(".", n=1).str[0] == assigned["parent_theme_id"]).all()
    assert unassigned.mean() <= 0.10
    empty = cluster_texts([], np.zeros((0, 384), dtype=np.float32))
    assert list(empty.columns) == list(out.columns) and len(empty) == 0


# -- labels ----------------------------------------------------------------------------------
def test_clean_for_labels_drops_placeholders_and_template_keys() -> None:
    texts = [
        "Make of the abandoned car: HONDA | Color of the abandoned car: BLUE | Details: flat tire",
        "Make of the abandoned car: FORD | Color of the abandoned car: RED",
        "Make of the abandoned car: KIA | Color of the abandoned car: GREY",
        "gas leak: smell near [ADDRESS], call [PHONE] http://example.org/x",
    ]
    keys = find_template_keys(texts, min_count=3)
    assert {"make of the abandoned car", "color of the abandoned car"} <= keys
    assert "gas leak" not in keys
    text, spans = clean_for_labels(texts[0], keys)
    assert text.startswith("Make of the abandoned car.") and spans == [(0, 25)]
    assert "Color of" not in text and "HONDA" in text and "flat tire" in text
    text, spans = clean_for_labels(texts[3], keys)
    assert "[" not in text and "http" not in text and "gas leak" in text and spans == []
    # Boston's own redaction marker is a placeholder too
    assert clean_for_labels("(redacted)", keys)[0] == ""


def test_ctfidf_sinks_shared_terms() -> None:
    from scipy import sparse

    # term 0 is in every class, term 1 only in class 0, with the same count there
    counts = sparse.csr_matrix(np.array([[5, 5, 0], [5, 0, 5], [5, 0, 0]]))
    scores = ctfidf(counts).toarray()
    assert scores[0, 1] > scores[0, 0]
    assert scores[1, 2] > scores[1, 0]


def test_describe_classes_readable_labels() -> None:
    trash = [
        "Missed trash pickup this morning.",
        "Trash pickup missed again, bags on the curb.",
        "Missed trash pickup for the second time.",
        "No trash pickup, missed collection.",
    ]
    table = extract_terms(LIGHTS + trash)
    out = describe_classes(table, [[0, 1, 2, 3], [4, 5, 6, 7]])
    assert "street light" in out[0].label
    assert "trash pickup" in out[1].label
    assert "street light" in out[0].keywords[0] or "light" in out[0].keywords[0]
    assert all(o.keywords for o in out)


def test_a_phrase_nearly_as_strong_as_its_head_word_labels_the_class() -> None:
    # "work" is in every text, "construction work" in a third of them; scored with c-TF-IDF and
    # the length bonus the phrase comes within 80% of the bare word, and says what the work is
    works = [
        "Construction work started at 6am again.",
        "Loud construction work next door on Sunday.",
        "Work on the roof all night.",
        "Work crew blocking the sidewalk.",
        "Work going on past 10pm.",
        "Noisy work at the house next door.",
    ]
    trash = [
        "Missed trash pickup this morning.",
        "Trash pickup missed again, bags on the curb.",
        "Missed trash pickup for the second time.",
        "No trash pickup, missed collection.",
    ]
    table = extract_terms(works + trash)
    out = describe_classes(table, [list(range(6)), list(range(6, 10))])
    assert out[0].label == "construction work"
    assert "trash pickup" in out[1].label


def test_make_unique_disambiguates_with_keywords() -> None:
    labels = [
        ThemeLabel("street light", ["street light", "pole"]),
        ThemeLabel("street light", ["street light", "outage"]),
        ThemeLabel("", ["pothole"]),
        ThemeLabel("snow", []),
        ThemeLabel("snow", []),
    ]
    names = make_unique(labels)
    assert names[:3] == ["street light (pole)", "street light (outage)", "pothole"]
    assert names[3] != names[4] and len(set(names)) == 5


# -- the real stratified sample (needs ../shared/data_raw) ---------------------------------------
@pytest.mark.slow
@pytest.mark.shared
def test_stratified_sample_beats_bertopic_reported_nmi() -> None:
    from sklearn.metrics import normalized_mutual_info_score

    from benchmarks.common import CACHE, data_raw

    if data_raw() is None:
        pytest.skip("../shared/data_raw is absent")
    from benchmarks.common import boston_stratified, cached_embeddings

    if not any(CACHE.glob("boston-strat-*.npy")):
        pytest.skip("stratified-sample embeddings are not cached yet (run benchmarks/themes.py)")
    df = boston_stratified()
    emb = cached_embeddings("boston-strat", df["description"].tolist())
    model = ThemeModel(seed=42, label=False).fit(emb, df["description"].tolist())
    pred = ["-" if v is None else v for v in model.labels_]
    assert model.unassigned_share_ <= 0.10 and model.n_themes_ <= 40
    # the issue measured BERTopic's defaults at NMI 0.36 on this sample
    assert normalized_mutual_info_score(df["service_name"], pred) > 0.36


def test_near_duplicate_groups_merge_and_distinct_ones_stay_apart() -> None:
    from analyzer.themes.grouping import merge_near_duplicates

    rng = np.random.default_rng(0)
    base = rng.normal(size=(3, 16))
    # rows of three directions; groups 0 and 1 are the same direction, group 2 another
    x = np.vstack([base[0] + 0.05 * rng.normal(size=(10, 16)) for _ in range(2)])
    x = np.vstack([x, base[2] + 0.05 * rng.normal(size=(10, 16))])
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    fine = np.repeat(np.arange(3), 10)  # one fine cluster per ten rows
    merged = merge_near_duplicates(x, fine, np.arange(3), 0.8)
    assert merged[0] == merged[1] and merged[2] != merged[0]
    # nothing merges at cosine 1, and ``among`` limits the merge to one theme's groups
    assert list(merge_near_duplicates(x, fine, np.arange(3), 1.0)) == [0, 1, 2]
    assert list(merge_near_duplicates(x, fine, np.arange(3), 0.8, among=np.array([1, 2]))) == [
        0,
        1,
        2,
    ]


def test_labels_never_name_a_place_or_a_word_every_theme_shares() -> None:
    # "Gladiator Street" is in every text of the first class, more often than "pothole"; "road"
    # is in every text of both classes: neither tells the first class apart
    potholes = [
        "There is a big pothole on Gladiator Street by the road.",
        "Pothole near Gladiator Street, the road is damaged.",
        "Deep pothole outside 4 Gladiator Street on the road.",
        "Gladiator Street again: pothole in the road.",
        "The road on Gladiator Street has a pothole.",
    ]
    lights = [
        "Street light out on the road by the school.",
        "The street light is out along the road.",
        "Broken street light on the main road.",
        "Street light flickering over the road.",
        "Street light dark on the road at night.",
    ]
    table = extract_terms(potholes + lights)
    assert "gladiator" in table.names
    out = describe_classes(table, [list(range(5)), list(range(5, 10))])
    assert "pothole" in out[0].label
    for lab in out:
        assert "gladiator" not in lab.label and "road" not in lab.label.split()
        assert not any("gladiator" in k for k in lab.keywords)


def test_a_label_keeps_the_word_residents_write_before_it() -> None:
    # the parser reads "Fly" as a verb at the start of a title, so the noun chunk is "tipping"
    dumped = [
        "Fly tipping. Rubbish dumped on the pavement.",
        "Fly tipping. Bags of rubbish left by the bins.",
        "Fly tipping. A sofa dumped outside the shop.",
        "Fly tipping. Mattress and bags on the corner.",
    ]
    table = extract_terms(dumped + LIGHTS)
    out = describe_classes(table, [[0, 1, 2, 3], [4, 5, 6, 7]])
    assert out[0].label.startswith("fly tipping"), out[0].label


def test_near_duplicates_are_judged_against_how_alike_the_corpus_is() -> None:
    """A corpus whose groups are all alike (a language the embedding model does not know) raises
    the near-duplicate cosine above 0.8; one with distinct groups keeps 0.8."""
    from analyzer.themes.grouping import merge_near_duplicates, near_duplicate_cosine

    rng = np.random.default_rng(1)
    fine = np.repeat(np.arange(20), 10)
    common = rng.normal(size=16)
    # twenty groups around one shared direction: every pair of group means about 0.85 alike
    dirs = common + 0.45 * np.linalg.norm(common) / 4 * rng.normal(size=(20, 16))
    x = np.vstack([d + 0.05 * rng.normal(size=(10, 16)) for d in dirs])
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    groups = np.arange(20)
    at = near_duplicate_cosine(x, fine, groups, 0.8)
    assert at > 0.8
    # at 0.8 the alike corpus collapses into a few groups; at its own threshold most stay
    assert len(np.unique(merge_near_duplicates(x, fine, groups, 0.8))) <= 5
    assert len(np.unique(merge_near_duplicates(x, fine, groups, at))) >= 15
    # distinct directions: the fixed 0.8 decides
    spread = np.vstack([rng.normal(size=16) + 0.05 * rng.normal(size=(10, 16)) for _ in range(20)])
    spread /= np.linalg.norm(spread, axis=1, keepdims=True)
    assert near_duplicate_cosine(spread, fine, groups, 0.8) == 0.8


def test_top_theme_count_is_the_most_stable_of_a_few(
    sample: tuple[pd.DataFrame, np.ndarray],
) -> None:
    from analyzer.themes.granularity import most_stable, top_count_candidates

    assert top_count_candidates(700) == [8, 11, 13, 16]
    assert top_count_candidates(100) == [8]  # the floor
    assert top_count_candidates(40_000) == [40]  # the cap
    a = np.repeat([0, 1, 2, 3], 25)
    shuffled = np.random.default_rng(0).permutation(a)
    best, score = most_stable({4: [a, a, a], 8: [a, shuffled, a]})
    assert best == 4 and score[4] == 1.0 and score[8] < 0.5
    assert most_stable({4: [a, a], 8: [a, a]})[0] == 8  # a tie goes to the finer count

    df, emb = sample
    texts = df["text"].tolist()
    model = ThemeModel(seed=42, label=False).fit(emb, texts)
    assert model.top_count_ in top_count_candidates(len(texts))
    assert set(model.top_stability_) == set(top_count_candidates(len(texts)))
    assert model.n_themes_ <= model.top_count_
    fixed = ThemeModel(seed=42, label=False, max_top_themes=9).fit(emb, texts)
    assert fixed.top_count_ == 9 and fixed.top_stability_ == {}
