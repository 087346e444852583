"""The int8 recipes' inputs: calibration texts and the layer kept in floating point."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from analyzer.embedding.quantize import (
    CALIBRATION,
    SAMPLES_DIR,
    calibration_texts,
    first_ffn_output,
    quantize_static,
    texts_sha256,
)
from analyzer.errors import ModelBundleError


def test_calibration_texts_are_a_fixed_draw_from_every_sample() -> None:
    texts = calibration_texts()
    assert len(texts) == sum(k for _, k in CALIBRATION.values())
    assert all(t.strip() for t in texts)
    assert texts_sha256(calibration_texts()) == texts_sha256(texts)  # same draw every build
    # 311 descriptions first, then the survey and engagement comments
    boston = CALIBRATION["boston_311_sample.csv"][1]
    assert len(set(texts[:boston])) > 0.9 * boston and texts[boston] not in texts[:boston]


def test_texts_hash_tells_apart_order_and_boundaries() -> None:
    assert texts_sha256(["ab", "c"]) != texts_sha256(["a", "bc"])
    assert texts_sha256(["a", "b"]) != texts_sha256(["b", "a"])


def test_missing_calibration_file_is_a_clear_error(tmp_path: Path) -> None:
    for name in list(CALIBRATION)[1:]:
        shutil.copy(SAMPLES_DIR / name, tmp_path / name)
    with pytest.raises(ModelBundleError, match=r"boston_311_sample\.csv"):
        calibration_texts(tmp_path)


def test_no_calibration_inputs_is_refused() -> None:
    with pytest.raises(ModelBundleError, match="no calibration"):
        quantize_static(object(), [])


def test_first_ffn_output_is_the_projection_after_the_first_gelu() -> None:
    import numpy as np
    import openvino as ov
    import openvino.opset13 as ops

    x = ops.parameter([2, 4], np.float32, name="x")
    up = ops.matmul(x, ops.constant(np.ones((4, 8), np.float32)), False, False)
    up.set_friendly_name("up")
    act = ops.gelu(up, "erf")
    down = ops.matmul(act, ops.constant(np.ones((8, 4), np.float32)), False, False)
    down.set_friendly_name("down")
    second = ops.matmul(
        ops.gelu(down, "erf"), ops.constant(np.ones((4, 4), np.float32)), False, False
    )
    assert first_ffn_output(ov.Model([second], [x])) == "down"
    assert first_ffn_output(ov.Model([up], [x])) is None  # no GELU: nothing kept in float
