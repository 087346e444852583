"""Tagger, zero-shot tagger, bundles, corrections and the ``civicpulse tag`` commands.

Real data: the redacted Boston sample in data_samples/ (skipped when absent). Its embeddings are
cached under var/cache/embeddings after the first run.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analyzer.embedding import PACKAGED_MODEL_SHA256
from analyzer.errors import InputError, ModelBundleError
from analyzer.tagging.corrections import (
    load_corrections,
    merge_corrections,
    record_correction,
    retrain,
)
from analyzer.tagging.supervised import (
    NEVER_ACCEPT,
    Tagger,
    ZeroShotTagger,
    choose_threshold,
    expected_calibration_error,
    load_tagger,
    precision_lower_bound,
    time_ordered_folds,
    time_split,
)

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "data_samples" / "boston_311_sample.csv"
SHIPPED = ROOT / "models" / "boston-311"
needs_sample = pytest.mark.skipif(
    not SAMPLE.is_file(), reason="data_samples/boston_311_sample.csv absent"
)
PER_SERVICE = 150


# -- pure functions ------------------------------------------------------------------------------


def test_ece_known_values() -> None:
    # Four rows at confidence 0.9, three right: |0.75 - 0.9| = 0.15 over the whole set.
    proba = np.array([[0.9, 0.1]] * 4)
    assert expected_calibration_error(proba, np.array([0, 0, 0, 1])) == pytest.approx(0.15)
    # Two bins: 0.6 (1 of 2 right: gap 0.1) and 1.0 (2 of 2 right: gap 0): 0.5 * 0.1.
    proba = np.array([[0.6, 0.4], [0.4, 0.6], [1.0, 0.0], [0.0, 1.0]])
    assert expected_calibration_error(proba, np.array([0, 0, 0, 1])) == pytest.approx(0.05)


def test_choose_threshold_largest_set_reaching_the_target() -> None:
    conf = np.array([0.99, 0.95, 0.9, 0.8, 0.7, 0.6, 0.5])
    correct = np.array([1, 1, 1, 0, 1, 0, 0], dtype=bool)
    # precision from the top: 1, 1, 1, .75, .8, .67, .57
    assert choose_threshold(conf, correct, 0.95, bound="none") == pytest.approx(0.9)
    assert choose_threshold(conf, correct, 0.8, bound="none") == pytest.approx(0.7)
    assert choose_threshold(conf, np.zeros(7, dtype=bool), 0.95, bound="none") == NEVER_ACCEPT
    # Tied confidences are accepted or refused together.
    tied = choose_threshold(np.array([0.9, 0.9, 0.8]), np.array([1, 0, 1], bool), 0.9, bound="none")
    assert tied == NEVER_ACCEPT
    # Three right answers out of three prove little: no bound reaches 0.95 on them.
    for bound in ("clopper-pearson", "wilson"):
        assert choose_threshold(conf, correct, 0.95, bound=bound) == NEVER_ACCEPT


def test_precision_lower_bound_known_values() -> None:
    # Clopper-Pearson with every one right: the bound solves p ** n = alpha.
    assert precision_lower_bound(100, 100)[()] == pytest.approx(0.05 ** (1 / 100))
    assert precision_lower_bound(0, 10)[()] == 0.0
    k, n = np.array([95, 950]), np.array([100, 1000])
    for method in ("clopper-pearson", "wilson"):
        lb = precision_lower_bound(k, n, method=method)
        assert (lb < 0.95).all() and lb[0] < lb[1]  # below the estimate, tighter with more rows
    # Wilson one-sided 95% for 95/100, z = 1.6449:
    # (0.95 + z^2/200 - z * sqrt(0.95 * 0.05 / 100 + z^2 / 40000)) / (1 + z^2 / 100) = 0.9008
    assert precision_lower_bound(95, 100, method="wilson")[()] == pytest.approx(0.9008, abs=1e-4)
    assert precision_lower_bound(95, 100, method="none")[()] == pytest.approx(0.95)
    with pytest.raises(ValueError):
        precision_lower_bound(1, 2, method="guess")


@pytest.mark.parametrize("bound", ["clopper-pearson", "wilson"])
def test_chosen_threshold_lower_bound_meets_the_target(bound: str) -> None:
    # Synthetic calibrated scores: a row with confidence c is right with probability c.
    rng = np.random.default_rng(0)
    conf = rng.beta(5, 1, size=3000)
    correct = rng.random(3000) < conf
    t = choose_threshold(conf, correct, 0.95, bound=bound)
    accepted = conf >= t
    assert 0.1 < accepted.mean() < 0.9
    lower = precision_lower_bound(correct[accepted].sum(), accepted.sum(), method=bound)
    assert lower >= 0.95
    # The largest such set: accepting the next row down breaks the bound (or there is none).
    below = conf[conf < t]
    if len(below):
        wider = conf >= below.max()
        assert precision_lower_bound(correct[wider].sum(), wider.sum(), method=bound) < 0.95
    # The point estimate accepts more, and its set is right less often.
    loose = conf >= choose_threshold(conf, correct, 0.95, bound="none")
    assert loose.sum() > accepted.sum()
    assert correct[loose].mean() < correct[accepted].mean()


def test_unreachable_target_sends_everything_to_review() -> None:
    rng = np.random.default_rng(1)
    conf = rng.random(500)
    correct = rng.random(500) < 0.8  # 80% right whatever the confidence
    assert choose_threshold(conf, correct, 0.95) == NEVER_ACCEPT
    # All right, but too few rows to show 99.9% precision at 95% confidence.
    assert choose_threshold(conf, np.ones(500, bool), 0.999) == NEVER_ACCEPT
    assert choose_threshold(np.zeros(0), np.zeros(0, bool), 0.95) == NEVER_ACCEPT


def test_time_ordered_folds_follow_the_requests_as_they_came() -> None:
    # "b" is a category the city opened (or renamed) late: it exists only in the newest 10%
    times = pd.date_range("2018-01-01", periods=300, freq="D")
    labels = np.array(["a"] * 270 + ["b"] * 30, dtype=object)
    folds = time_ordered_folds(labels, times, n_folds=2, window=0.2)
    assert len(folds) == 2
    past, nxt = folds[0]
    assert nxt.sum() == 60 and past.sum() == 240
    assert np.asarray(times)[nxt].min() > np.asarray(times)[past].max()
    # the late category is validated against a model that never saw it, as after deployment
    assert (nxt & (labels == "b")).sum() == 30 and not (past & (labels == "b")).any()


def test_time_ordered_folds_per_label_validate_on_later_rows() -> None:
    rng = np.random.default_rng(2)
    times = pd.Timestamp("2015-01-01") + pd.to_timedelta(rng.integers(0, 3000, 300), unit="D")
    labels = np.array(["a"] * 200 + ["b"] * 100, dtype=object)
    folds = time_ordered_folds(labels, times, n_folds=2, window=0.2, per_label=True)
    assert len(folds) == 2
    t = np.asarray(times)
    for past, nxt in folds:
        assert not (past & nxt).any()
        for lab, n in (("a", 200), ("b", 100)):
            m = labels == lab
            assert (past & m).sum() >= 0.59 * n and (nxt & m).sum() == pytest.approx(0.2 * n, abs=1)
            assert t[nxt & m].min() >= t[past & m].max()  # each label's window follows its past
    # the second fold's window is the one before the first's
    assert (folds[1][1] & folds[0][1]).sum() == 0 and not (folds[1][0] & folds[0][1]).any()


def test_time_split_cuts_each_label_at_its_own_quantile() -> None:
    times = list(pd.date_range("2019-01-01", periods=10, freq="D")) + list(
        pd.date_range("2015-01-01", periods=5, freq="YS")
    )
    labels = ["a"] * 10 + ["b"] * 5
    past, later = time_split(labels, times)
    assert past[:8].all() and later[8:10].all()  # the last 20% of "a"'s days
    assert past[10:14].all() and later[14]  # "b" lives in other years and still gets both sides


# -- real data -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def boston() -> dict[str, object]:
    if not SAMPLE.is_file():
        pytest.skip("data_samples/boston_311_sample.csv absent")
    from sklearn.model_selection import train_test_split

    from benchmarks.common import cached_embeddings

    df = pd.read_csv(SAMPLE, dtype=str, keep_default_na=False)
    df = df[df["description"].str.strip() != ""]
    parts = [
        g.sample(n=min(PER_SERVICE, len(g)), random_state=0) for _, g in df.groupby("service_name")
    ]
    df = pd.concat(parts).sort_values("service_request_id").reset_index(drop=True)
    texts = df["description"].tolist()
    emb = cached_embeddings("test-tagging-sample", texts)
    idx_tr, idx_te = train_test_split(
        np.arange(len(df)), test_size=0.25, stratify=df["service_name"], random_state=0
    )
    y = df["service_name"].to_numpy(dtype=object)
    return {
        "df": df,
        "train": ([texts[i] for i in idx_tr], y[idx_tr], emb[idx_tr]),
        "test": ([texts[i] for i in idx_te], y[idx_te], emb[idx_te]),
    }


@pytest.fixture(scope="module")
def fitted(boston) -> Tagger:
    texts, y, emb = boston["train"]
    return Tagger().fit(texts, y, embeddings=emb)


@needs_sample
def test_calibration_lowers_ece_on_held_out_rows(boston, fitted) -> None:
    texts, y, emb = boston["test"]
    yi = np.searchsorted(fitted.classes_, y)
    before = expected_calibration_error(
        fitted.predict_proba(texts, embeddings=emb, calibrated=False), yi
    )
    after = expected_calibration_error(fitted.predict_proba(texts, embeddings=emb), yi)
    assert after <= before
    assert after < 0.08
    assert np.mean(fitted.predict(texts, embeddings=emb) == y) > 0.8


@needs_sample
def test_review_threshold_reaches_target_precision(boston, fitted) -> None:
    m = fitted.metrics_
    # On the validation (out-of-fold) predictions the threshold was chosen on:
    assert m["auto_accept_precision"] >= fitted.target_precision
    assert 0.3 < m["auto_accept_share"] < 1.0
    assert 0 < fitted.threshold_ < 1
    # And it carries over to rows the model never saw (a little slack for 190 rows).
    texts, y, emb = boston["test"]
    rows = fitted.predict_detailed(texts, embeddings=emb)
    accepted = np.array([not r["needs_review"] for r in rows])
    pred = np.array([r["predicted_label"] for r in rows])
    assert accepted.mean() > 0.3
    assert (pred == y)[accepted].mean() >= 0.9
    # A stricter target accepts fewer.
    strict = Tagger(target_precision=0.99).fit(*boston["train"][:2], embeddings=boston["train"][2])
    assert strict.threshold_ >= fitted.threshold_


@needs_sample
def test_time_ordered_validation_when_times_are_given(boston) -> None:
    df = boston["df"]
    texts = df["description"].tolist()
    y = df["service_name"].to_numpy(dtype=object)
    from benchmarks.common import cached_embeddings

    emb = cached_embeddings("test-tagging-sample", texts)
    # the sample is 400 rows of each service whatever their years (one begins in 2019): per label
    tagger = Tagger(time_per_label=True).fit(
        texts, y, embeddings=emb, times=df["requested_datetime"]
    )
    m = tagger.metrics_
    assert m["validation"].startswith("time-ordered: 2 fold(s)")
    assert m["n_validation_rows"] == pytest.approx(0.4 * len(texts), rel=0.05)
    # The bound, not just the estimate, reaches the target on the validated rows.
    assert m["auto_accept_precision_lower_bound"] >= tagger.target_precision
    assert m["auto_accept_precision"] >= m["auto_accept_precision_lower_bound"]
    assert 0.2 < m["auto_accept_share"] < 1.0
    with pytest.raises(InputError):
        Tagger().fit(texts, y, embeddings=emb, times=df["requested_datetime"][:-1])


@needs_sample
def test_unreachable_target_on_real_data_reviews_everything(boston) -> None:
    texts, y, emb = boston["train"]
    tagger = Tagger(target_precision=0.999).fit(texts, y, embeddings=emb)
    assert tagger.threshold_ == NEVER_ACCEPT
    rows = tagger.predict_detailed(*boston["test"][:1], embeddings=boston["test"][2])
    assert all(r["needs_review"] for r in rows)


@needs_sample
def test_predict_detailed_rows(boston, fitted) -> None:
    texts, _, emb = boston["test"]
    rows = fitted.predict_detailed([*texts[:20], "   "], embeddings=np.vstack([emb[:20], emb[:1]]))
    proba = fitted.predict_proba(texts[:20], embeddings=emb[:20])
    for row, p in zip(rows, proba, strict=False):
        assert set(row) == {
            "predicted_label",
            "confidence",
            "needs_review",
            "alternatives",
            "possible_new_category",
        }
        alts = row["alternatives"]
        assert len(alts) == 3 and alts[0]["label"] == row["predicted_label"]
        assert [a["probability"] for a in alts] == sorted(
            (a["probability"] for a in alts), reverse=True
        )
        assert row["confidence"] == pytest.approx(p.max())
        assert row["needs_review"] == (row["confidence"] < fitted.threshold_)
    assert rows[-1]["needs_review"]  # an empty text always goes to a person


@needs_sample
def test_possible_new_category_flags_far_away_requests(boston, fitted, embedder) -> None:
    texts, _, emb = boston["test"]
    known = fitted.predict_detailed(texts, embeddings=emb)
    assert np.mean([r["possible_new_category"] for r in known]) < 0.1
    off_topic = [
        "Preheat the oven to 180 degrees and whisk the eggs with the sugar until pale.",
        "The quarterback threw three touchdowns in the second half of the championship game.",
        "My grandmother's knitting pattern uses a double moss stitch for the sleeves.",
        "Photosynthesis converts light energy into chemical energy stored in glucose.",
    ]
    far = fitted.predict_detailed(off_topic, embeddings=embedder.embed(off_topic))
    assert sum(r["possible_new_category"] for r in far) >= 3


@needs_sample
def test_bundle_round_trip_and_manifest(boston, fitted, tmp_path: Path) -> None:
    texts, _, emb = boston["test"]
    folder = fitted.save(tmp_path / "m", training_data_hash="abc", metrics={"note": 1})
    loaded = Tagger.load(folder)
    np.testing.assert_allclose(
        loaded.predict_proba(texts, embeddings=emb),
        fitted.predict_proba(texts, embeddings=emb),
        rtol=1e-5,
        atol=1e-6,
    )
    assert loaded.threshold_ == fitted.threshold_ and list(loaded.classes_) == list(fitted.classes_)
    manifest = json.loads((folder / "manifest.json").read_text())
    for key in (
        "labels",
        "metrics",
        "training_data_hash",
        "created_at",
        "library_versions",
        "embedding_model_id",
        "embedding_sha256",
        "files",
    ):
        assert manifest[key], key
    assert manifest["embedding_sha256"] == PACKAGED_MODEL_SHA256
    assert not list(folder.rglob("*.pkl")) and not list(folder.rglob("*.pickle"))
    assert isinstance(load_tagger(folder), Tagger)


@needs_sample
@pytest.mark.parametrize("victim", ["arrays/coef.npy", "vocabulary.json", "state.json"])
def test_tampered_bundle_is_refused(fitted, tmp_path: Path, victim: str) -> None:
    folder = fitted.save(tmp_path / "m")
    path = folder / victim
    data = bytearray(path.read_bytes())
    data[-3] ^= 0x01  # one bit of one byte
    path.write_bytes(bytes(data))
    with pytest.raises(ModelBundleError, match="does not match"):
        Tagger.load(folder)


@needs_sample
def test_extra_fields_are_used_and_required(boston, tmp_path: Path) -> None:
    texts, y, emb = boston["train"]
    # A field that says the label outright must dominate the text.
    extra = pd.DataFrame({"channel": [f"form-{v}" for v in y]})
    tagger = Tagger().fit(texts, y, extra=extra, embeddings=emb)
    flipped = pd.DataFrame({"channel": ["form-Other"] * 5})
    rows = tagger.predict_detailed(texts[:5], extra=flipped, embeddings=emb[:5])
    assert sum(r["predicted_label"] == "Other" for r in rows) >= 4
    with pytest.raises(InputError, match="extra fields"):
        tagger.predict(texts[:5], embeddings=emb[:5])
    loaded = Tagger.load(tagger.save(tmp_path / "x"))
    assert list(loaded.predict(texts[:5], extra=flipped, embeddings=emb[:5])) == [
        r["predicted_label"] for r in rows
    ]


@needs_sample
def test_corrections_change_a_retrain(boston, fitted, tmp_store, embedder) -> None:
    texts, y, emb = boston["train"]
    test_texts, _, test_emb = boston["test"]
    row = fitted.predict_detailed(test_texts[:1], embeddings=test_emb[:1])[0]
    target = row["alternatives"][1]["label"]  # what the model thinks is second best
    assert row["predicted_label"] != target
    cid = record_correction(tmp_store, test_texts[0], target, record_id="rec-1")
    stored = load_corrections(tmp_store)
    assert list(stored["id"]) == [cid] and list(stored["label"]) == [target]

    again = retrain(texts, y, tagger=fitted, embeddings=emb)  # no corrections: same answer
    assert again.predict([test_texts[0]], embeddings=test_emb[:1])[0] == row["predicted_label"]
    corrected = retrain(texts, y, store=tmp_store, tagger=fitted, embeddings=emb)
    assert (
        corrected.predict([test_texts[0]], embeddings=embedder.embed([test_texts[0]]))[0] == target
    )


def test_a_correction_replaces_its_text_s_history_row_and_is_the_newest() -> None:
    """The one rule ``retrain`` and ``tag train --with-corrections`` share."""
    corr = pd.DataFrame({"text": ["pothole on elm", "new text"], "label": ["Street", "Trees"]})
    times = pd.Series(pd.to_datetime(["2024-01-01", "2024-02-01", "2024-03-01"], utc=True))
    emb = np.eye(3, dtype=np.float32)
    merged = merge_corrections(
        ["light out", "pothole on elm", "graffiti"],
        ["Lights", "Sanitation", "Graffiti"],
        corr,
        correction_weight=4.0,
        embeddings=emb,
        embed=lambda new: np.full((len(new), 3), 9.0, dtype=np.float32),
        times=times,
    )
    assert merged.texts == ["light out", "graffiti", "pothole on elm", "new text"]
    assert merged.labels == ["Lights", "Graffiti", "Street", "Trees"]  # the old label is gone
    assert merged.weight == [1.0, 1.0, 4.0, 4.0]
    assert np.array_equal(merged.embeddings[:2], emb[[0, 2]]) and (merged.embeddings[2:] == 9).all()
    assert (merged.times.iloc[2:] >= times.max()).all() and len(merged.times) == 4
    same = merge_corrections(["a"], ["A"], pd.DataFrame(), embeddings=emb[:1])
    assert same.texts == ["a"] and same.weight == [1.0] and same.embeddings is not None


def test_correction_text_is_redacted(tmp_store) -> None:
    record_correction(
        tmp_store, "Car in my driveway again, call me at 617-555-0123", "Illegal Parking"
    )
    record_correction(
        tmp_store, "Car in my driveway again, call me at 617-555-0123", "Abandoned Vehicle"
    )
    stored = load_corrections(tmp_store)
    assert len(stored) == 1 and stored["label"].iloc[0] == "Abandoned Vehicle"  # the latest wins
    assert "617-555-0123" not in stored["text"].iloc[0]
    with pytest.raises(InputError):
        record_correction(tmp_store, "text", "  ")


# -- zero-shot -----------------------------------------------------------------------------------

SERVICES = [
    {"name": "Pothole", "description": "A hole or broken pavement in the road surface."},
    {"name": "Snow", "description": "Snow or ice not cleared from a sidewalk or street."},
    {"name": "Parking", "description": "A car parked illegally, blocking a driveway or hydrant."},
]


def test_zero_shot_matches_by_description(tmp_path: Path) -> None:
    texts = [
        "There is a huge hole in the street that damaged my tire",
        "Nobody shoveled the sidewalk after the storm, it is a sheet of ice",
        "Someone parked in front of my driveway again",
    ]
    zs = ZeroShotTagger(SERVICES).fit()
    rows = zs.predict_detailed(texts)
    assert [r["predicted_label"] for r in rows] == ["Pothole", "Snow", "Parking"]
    assert all(len(r["alternatives"]) == 3 for r in rows)
    proba = zs.predict_proba(texts)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-6)
    # Review is decided on the margin between the two best similarities.
    zs.margin_threshold_ = 1.0
    assert all(r["needs_review"] for r in zs.predict_detailed(texts))
    zs.margin_threshold_ = 0.0
    assert not any(r["needs_review"] for r in zs.predict_detailed(texts))
    # Round trip through a bundle.
    folder = zs.save(tmp_path / "zs")
    loaded = load_tagger(folder)
    assert isinstance(loaded, ZeroShotTagger)
    assert [r["predicted_label"] for r in loaded.predict_detailed(texts)] == [
        "Pothole",
        "Snow",
        "Parking",
    ]
    with pytest.raises(InputError):
        ZeroShotTagger([{"name": "Only one"}]).fit()


@needs_sample
def test_zero_shot_on_boston(boston) -> None:
    from sklearn.metrics import f1_score

    from benchmarks.tagging import BOSTON_SERVICES

    texts, y, emb = boston["test"]
    zs = ZeroShotTagger(BOSTON_SERVICES).fit()
    pred = zs.predict(texts, embeddings=emb)
    assert f1_score(y, pred, average="macro") > 0.5  # five classes: chance is 0.2
    tr_texts, tr_y, tr_emb = boston["train"]
    zs.calibrate(tr_texts, tr_y, embeddings=tr_emb)
    rows = zs.predict_detailed(tr_texts, embeddings=tr_emb)
    accepted = np.array([not r["needs_review"] for r in rows])
    right = np.array([r["predicted_label"] for r in rows]) == tr_y
    if accepted.any():  # the margin threshold reaches the target on the data it was set on
        assert right[accepted].mean() >= 0.95


# -- CLI -----------------------------------------------------------------------------------------


def _cli(command: str) -> int:
    """Run ``civicpulse COMMAND`` in this process (paths here have no spaces); the exit code."""
    from analyzer.cli import main

    with pytest.raises(SystemExit) as exc:
        main(command.split())
    return int(exc.value.code or 0)


@pytest.fixture(scope="module")
def cli_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    if not SAMPLE.is_file():
        pytest.skip("data_samples/boston_311_sample.csv absent")
    df = pd.read_csv(SAMPLE, dtype=str, keep_default_na=False)
    df = df[df["description"].str.strip() != ""]
    train = pd.concat(g.sample(n=20, random_state=1) for _, g in df.groupby("service_name"))
    rest = df.drop(train.index)
    new = rest.sample(n=12, random_state=2)[["service_request_id", "description", "address"]]
    folder = tmp_path_factory.mktemp("cli")
    train.to_csv(folder / "train.csv", index=False)
    new.to_csv(folder / "new.csv", index=False)
    return {"dir": folder, "train": folder / "train.csv", "new": folder / "new.csv"}


@pytest.fixture(scope="module")
def cli_model(cli_files) -> Path:
    out = cli_files["dir"] / "models" / "boston-test"
    train = cli_files["train"]
    code = _cli(
        f"tag train --input {train} --text-col description --label-col service_name "
        f"--time-col requested_datetime --out {out}"
    )
    assert code == 0
    return out


@needs_sample
def test_cli_train_writes_a_bundle(cli_model: Path) -> None:
    manifest = json.loads((cli_model / "manifest.json").read_text())
    assert len(manifest["labels"]) == 5
    assert {"cross_validated", "time_split", "input"} <= set(manifest["metrics"])
    assert 0 <= manifest["metrics"]["cross_validated"]["macro_f1"] <= 1
    assert manifest["metrics"]["time_split"]["n_rows"] == 20  # the latest 4 of each service


@needs_sample
def test_cli_predict_adds_columns(cli_files, cli_model: Path, capsys) -> None:
    out = cli_files["dir"] / "tagged.csv"
    new = cli_files["new"]
    code = _cli(
        f"tag predict --model {cli_model} --input {new} --text-col description --output {out}"
    )
    assert code == 0
    result = pd.read_csv(out, dtype=str, keep_default_na=False)
    source = pd.read_csv(new, dtype=str, keep_default_na=False)
    added = [
        "predicted_label",
        "confidence",
        "needs_review",
        "alternatives",
        "possible_new_category",
    ]
    assert list(result.columns) == [*source.columns, *added]
    assert result["service_request_id"].tolist() == source["service_request_id"].tolist()
    assert set(result["needs_review"]) <= {"True", "False"}
    assert all(len(json.loads(a)) == 3 for a in result["alternatives"])
    # one summary line, however long the temporary path in it and however narrow the terminal
    [summary] = [ln for ln in capsys.readouterr().err.splitlines() if "need review" in ln]
    assert summary.startswith(f"wrote {out}: 12 rows, ")


@needs_sample
def test_cli_train_validates_on_the_time_column_it_finds(cli_files, tmp_path: Path, capsys) -> None:
    """Called as the contract shows (no --time-col), `tag train` still chooses its review
    threshold on later requests: the file's requested_datetime is found by its name."""
    train = cli_files["train"]
    base = f"tag train --input {train} --text-col description --label-col service_name"
    assert _cli(f"{base} --out {tmp_path / 'found'}") == 0
    said = capsys.readouterr()
    assert "times in 'requested_datetime' (found by its name" in said.out + said.err
    found = json.loads((tmp_path / "found" / "manifest.json").read_text())
    assert found["metrics"]["time_split"]["n_rows"] > 0

    assert _cli(f"{base} --no-time --out {tmp_path / 'shuffled'}") == 0
    said = capsys.readouterr()
    assert "found by its name" not in said.out + said.err
    shuffled = json.loads((tmp_path / "shuffled" / "manifest.json").read_text())
    assert "time_split" not in shuffled["metrics"]
    assert "stratified" in shuffled["metrics"]["cross_validated"]["validation"]


def test_cli_train_with_corrections_learns_the_corrected_label(cli_files, tmp_path: Path) -> None:
    from analyzer.store.database import Store

    train = pd.read_csv(cli_files["train"], dtype=str, keep_default_na=False)
    row = train.iloc[0]
    other = next(c for c in train["service_name"].unique() if c != row["service_name"])
    db = tmp_path / "c.duckdb"
    with Store(db) as store:
        record_correction(store, row["description"], other)
    base = (
        f"tag train --input {cli_files['train']} --text-col description "
        f"--label-col service_name --no-time --store {db}"
    )
    assert _cli(f"{base} --with-corrections --out {tmp_path / 'm'}") == 0
    assert Tagger.load(tmp_path / "m").predict([row["description"]])[0] == other
    assert _cli(f"{base} --out {tmp_path / 'plain'}") == 0  # without: the history's label
    assert Tagger.load(tmp_path / "plain").predict([row["description"]])[0] == row["service_name"]


def _one_line_error(capsys, *needles: str) -> None:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    for needle in needles:
        assert needle in err, err


@needs_sample
def test_cli_bad_input_exits_2_with_one_line(
    cli_files, cli_model: Path, tmp_path: Path, capsys
) -> None:
    import shutil

    new, train, out = cli_files["new"], cli_files["train"], tmp_path / "o.csv"
    predict = f"tag predict --input {new} --output {out}"
    assert _cli(f"{predict} --model {cli_model} --text-col nope") == 2
    _one_line_error(capsys, "nope", str(new))

    assert _cli(f"{predict} --model {tmp_path / 'missing'} --text-col description") == 2
    _one_line_error(capsys, "manifest.json is missing")

    tampered = Path(shutil.copytree(cli_model, tmp_path / "tampered"))
    coef = tampered / "arrays" / "coef.npy"
    data = bytearray(coef.read_bytes())
    data[-1] ^= 0xFF
    coef.write_bytes(bytes(data))
    assert _cli(f"{predict} --model {tampered} --text-col description") == 2
    _one_line_error(capsys, "does not match", "arrays/coef.npy")

    base = f"tag train --input {train} --text-col description --out {tmp_path / 'm'}"
    assert _cli(f"{base} --label-col no_such_label") == 2
    _one_line_error(capsys, "no_such_label")
    bad = tmp_path / "bad.npy"
    np.save(bad, np.zeros((3, 384), dtype=np.float32))
    assert _cli(f"{base} --label-col service_name --embeddings {bad}") == 2
    _one_line_error(capsys, "one row per input row")
    assert not (tmp_path / "m").exists()


# -- the shipped bundle --------------------------------------------------------------------------


@needs_sample
@pytest.mark.skipif(not (SHIPPED / "manifest.json").is_file(), reason="models/boston-311 absent")
def test_shipped_bundle_on_the_sample(boston) -> None:
    """models/boston-311 was trained without the sample's rows, so this is a fair check."""
    from sklearn.metrics import f1_score

    texts, y, emb = boston["test"]
    tagger = Tagger.load(SHIPPED)
    assert sorted(tagger.classes_) == sorted(set(y))
    pred = tagger.predict(texts, embeddings=emb)
    assert f1_score(y, pred, average="macro") > 0.8


def test_rows_to_accept_when_nothing_can_be_accepted_yet() -> None:
    from analyzer.tagging.measures import NEVER_ACCEPT, rows_to_accept

    conf = np.linspace(0.99, 0.30, 60)
    # the 29 most confident right, then a miss, then a coin toss: too few rows to promise 0.95
    correct = np.r_[np.ones(29, bool), [False], np.arange(30) % 2 == 0]
    assert choose_threshold(conf, correct) == NEVER_ACCEPT
    need = rows_to_accept(conf, correct)
    assert need is not None and 60 < need < 400
    # with that many rows of the same quality the threshold exists
    reps = int(np.ceil(need / 60))
    assert choose_threshold(np.tile(conf, reps), np.tile(correct, reps)) < NEVER_ACCEPT
    # most confident answers below the target: more of the same history cannot help
    assert rows_to_accept(conf, np.arange(60) % 3 != 0) is None


def test_one_vs_rest_on_threads_gives_linearsvcs_weights() -> None:
    from sklearn.svm import LinearSVC

    from analyzer.tagging.linear import OneVsRestSVC

    rng = np.random.default_rng(0)
    centers = rng.normal(size=(5, 20))
    y = rng.choice(5, size=300, p=[0.5, 0.2, 0.15, 0.1, 0.05])
    X = centers[y] + rng.normal(scale=1.5, size=(300, 20))
    ref = LinearSVC(C=0.3, class_weight="balanced", random_state=1).fit(X, y)
    for threads in (1, 2):
        ours = OneVsRestSVC(C=0.3, class_weight="balanced", random_state=1, threads=threads)
        ours.fit(X, y)
        np.testing.assert_allclose(ours.coef_, ref.coef_, atol=1e-3)
        np.testing.assert_allclose(ours.intercept_, ref.intercept_, atol=1e-3)
        assert (ours.decision_function(X).argmax(1) == ref.predict(X)).mean() > 0.99


def test_file_order_stands_in_for_time_unless_the_file_is_grouped_by_category() -> None:
    from analyzer.tagging.inputs import file_order_times

    rng = np.random.default_rng(0)
    as_they_came = rng.choice(["pothole", "graffiti", "noise", "trash"], size=400).tolist()
    order = file_order_times(as_they_came)
    assert order is not None and order.is_monotonic_increasing and len(order) == 400
    assert file_order_times(sorted(as_they_came)) is None  # sorted by category
    # bursts (a storm's run of the same request) are still an order in time
    bursts = [lab for lab in as_they_came[:100] for _ in range(2)] + as_they_came[:200]
    assert file_order_times(bursts) is not None
