"""How the OpenVINO int8 models are made: NNCF weight compression and static quantisation.

Two recipes, used by ``analyzer.embedding.openvino_backend.build_model``:

- ``compress_int8`` (weights "int8"): the linear layers' weights to int8, data-free (symmetric,
  one scale per output channel); their inputs are quantised at run time by the CPU plugin
  (dynamic quantisation, groups of 128 values).
- ``quantize_static`` (weights "int8-static", the default backend): NNCF post-training
  quantisation. Activation ranges are calibrated once, on the packed rows of
  ``calibration_texts`` (real resident text from data_samples/: 311 descriptions and survey
  and engagement comments; ``$CIVICPULSE_CALIBRATION_DIR``, a folder holding files of the same
  names and columns, calibrates on a city's own texts instead), so the linear layers and
  attention run as pure int8 matrix products with fixed scales. The texts' sha256 is in the
  built model's manifest and so in its build id; a build whose texts are no longer the ones in
  force is rebuilt (``analyzer.embedding.openvino_backend.verify_built``). Two choices bring the vectors back to nearly the dynamic model's closeness
  to float32, measured on texts outside the calibration set by
  benchmarks/static_int8_recipes.py (mean / 1st-percentile cosine to sentence-transformers on
  1,500 Polis comments: NNCF's transformer defaults 0.9948 / 0.9850, the dynamic model
  0.9983 / 0.9966):

  * the first layer's feed-forward output projection (the linear layer after the first GELU)
    stays in floating point (0.9974 / 0.9933 with it kept). The six projections after a GELU
    see the widest activations; keeping layer 0's helped most when this was chosen (keeping
    layer 1's, 2's or 3's instead: mean 0.9956-0.9960; 4's or 5's: no gain), and each kept
    layer costs speed (all six: the dynamic model's texts/s);
  * SmoothQuant with alpha 0.85 (NNCF's default is 0.95) moves more of the
    activations' outliers into the weights (0.9967 / 0.9910 alone).

  Both together: 0.9980 / 0.9955 on the comments, 0.9985 / 0.9974 on Boston descriptions
  (dynamic 0.9987 / 0.9978), at about 1.15-1.2x the dynamic model's texts/s (embed_speed).
  With fixed scales a text's vector no longer depends on which texts share its packed row
  (the dynamic model's scales span the row), so the API and a bulk run give the same vector.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

from analyzer.errors import ModelBundleError

SAMPLES_DIR = Path(__file__).resolve().parents[2] / "data_samples"
# data_samples file -> (text column, texts drawn); a fixed seed, so every build sees the same.
CALIBRATION = {
    "boston_311_sample.csv": ("description", 600),
    "austin_survey_comments.csv": ("comment", 200),
    "bowling_green_comments.csv": ("comment-body", 200),
}
CALIBRATION_SEED = 1
# A folder of files named and shaped as in ``CALIBRATION`` to calibrate on instead of data_samples/.
CALIBRATION_ENV = "CIVICPULSE_CALIBRATION_DIR"
SMOOTH_QUANT_ALPHA = 0.85


def _quiet_nncf() -> Any:
    import nncf

    # NNCF prints tables and progress bars at INFO; the build's own line suffices.
    logging.getLogger("nncf").setLevel(logging.WARNING)
    return nncf


def compress_int8(model: Any) -> tuple[Any, str]:
    """The model with its linear layers' weights in int8 (NNCF, data-free) and NNCF's version."""
    nncf = _quiet_nncf()
    compressed = nncf.compress_weights(model, mode=nncf.CompressWeightsMode.INT8_SYM)
    return compressed, str(nncf.__version__)


def calibration_dir() -> Path:
    """Where the calibration files are: ``$CIVICPULSE_CALIBRATION_DIR``, else data_samples/."""
    env = os.environ.get(CALIBRATION_ENV, "").strip()
    return Path(env).expanduser() if env else SAMPLES_DIR


def calibration_source(samples_dir: Path | None = None) -> str:
    """What the manifest says the texts came from: the files, never a machine's path (the build
    id must not differ between machines that hold the same texts in different places)."""
    folder = calibration_dir() if samples_dir is None else Path(samples_dir)
    where = "data_samples/" if folder.resolve() == SAMPLES_DIR.resolve() else CALIBRATION_ENV
    return f"{where}: " + ", ".join(CALIBRATION)


def calibration_texts(samples_dir: Path | None = None) -> list[str]:
    """The calibration texts: a seeded draw from each sample file in ``CALIBRATION`` (in
    ``calibration_dir()`` unless ``samples_dir`` is given)."""
    import pandas as pd

    samples_dir = calibration_dir() if samples_dir is None else Path(samples_dir)
    texts: list[str] = []
    for name, (column, k) in CALIBRATION.items():
        path = samples_dir / name
        try:
            col = pd.read_csv(path, usecols=[column])[column]
        except (OSError, ValueError) as exc:
            raise ModelBundleError(
                f"{path}: cannot read the int8 calibration texts (column {column!r}): {exc}"
            ) from exc
        col = col.dropna().astype(str)
        col = col[col.str.strip() != ""]
        texts += col.sample(n=min(k, len(col)), random_state=CALIBRATION_SEED).tolist()
    return texts


def texts_sha256(texts: Sequence[str]) -> str:
    digest = hashlib.sha256()
    for text in texts:
        digest.update(text.encode("utf-8") + b"\0")
    return digest.hexdigest()


def calibration_sha256(samples_dir: Path | None = None) -> str:
    """``texts_sha256`` of the calibration texts in force, read again only when a file changes."""
    folder = calibration_dir() if samples_dir is None else Path(samples_dir)
    stats = []
    for name in CALIBRATION:
        try:
            st = (folder / name).stat()
            stats.append((name, st.st_size, st.st_mtime_ns))
        except OSError:
            stats.append((name, -1, -1))  # calibration_texts says what is missing
    return _calibration_sha256(str(folder.resolve()), tuple(stats))


@lru_cache(maxsize=8)
def _calibration_sha256(folder: str, stats: tuple[tuple[str, int, int], ...]) -> str:
    # the files' sizes and times are part of the key, so an edited file is read again
    return texts_sha256(calibration_texts(Path(folder)))


def first_ffn_output(model: Any) -> str | None:
    """The name of the MatMul the model's first GELU feeds (layer 0's FFN output), if any."""
    for op in model.get_ordered_ops():
        if op.get_type_name() == "Gelu":
            for target in op.output(0).get_target_inputs():
                consumer = target.get_node()
                if consumer.get_type_name() == "MatMul":
                    return str(consumer.get_friendly_name())
            return None
    return None


def quantize_static(
    model: Any,
    feeds: Sequence[dict[str, Any]],
    *,
    keep_first_ffn: bool = True,
    smooth_alpha: float | None = SMOOTH_QUANT_ALPHA,
) -> tuple[Any, dict[str, Any]]:
    """The model with static int8 activations, calibrated on ``feeds`` (the encoder's inputs).

    ``keep_first_ffn`` keeps the projection after the first GELU in floating point;
    ``smooth_alpha`` is SmoothQuant's alpha for matrix products (None: NNCF's default). The
    defaults are the shipped recipe; the others exist for benchmarks/static_int8_recipes.py.
    Returns the quantised model and what the manifest records of the recipe.
    """
    nncf = _quiet_nncf()
    if not feeds:
        raise ModelBundleError("no calibration inputs for the static int8 model")
    kept = first_ffn_output(model) if keep_first_ffn else None
    advanced = None
    if smooth_alpha is not None:
        advanced = nncf.AdvancedQuantizationParameters(
            smooth_quant_alphas=nncf.AdvancedSmoothQuantParameters(matmul=smooth_alpha)
        )
    quantized = nncf.quantize(
        model,
        nncf.Dataset(list(feeds)),
        model_type=nncf.ModelType.TRANSFORMER,
        subset_size=len(feeds),
        ignored_scope=nncf.IgnoredScope(names=[kept] if kept else []),
        advanced_parameters=advanced,
    )
    recipe = {
        "nncf": str(nncf.__version__),
        "model_type": "transformer",
        "smooth_quant_alpha": smooth_alpha if smooth_alpha is not None else "nncf default",
        "kept_in_float": [kept] if kept else [],
        "calibration_calls": len(feeds),
    }
    return quantized, recipe
