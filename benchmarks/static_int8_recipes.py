"""Why the static int8 model is built the way it is: its recipe against the alternatives.

Every recipe quantises the same float model on the same calibration calls
(``analyzer.embedding.openvino_backend.calibration_feeds``: 1,000 texts from data_samples/), into a temporary
folder, and is then measured on texts it was not calibrated on, against sentence-transformers
(float32): cosine per text on 2,000 balanced Boston descriptions (embed_speed's) and on 1,500
engagement comments (Polis conversations not in data_samples/), mean / 1st percentile / min;
and texts/s on the Boston texts (one run each, interleaved; the shipped dynamic int8 model is
timed beside them as the reference).

Recipes: NNCF's transformer defaults; the first layer's FFN output projection kept in floating
point (``keep_first_ffn``); SmoothQuant's alpha (``smooth_alpha``: NNCF's default, 0.85, 0.75).
The shipped one is ``analyzer.embedding.quantize``'s defaults.

    python -m benchmarks.static_int8_recipes

Exits 0 with a "skipped" line when ../shared/data_raw is absent.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.common import require_data_raw, write_result
from benchmarks.embed_speed import cosine_stats, make_encoder, polis_comments, speed_texts

# name -> quantize_static keyword arguments
RECIPES: dict[str, dict[str, Any]] = {
    "nncf defaults": {"keep_first_ffn": False, "smooth_alpha": None},
    "alpha 0.85": {"keep_first_ffn": False, "smooth_alpha": 0.85},
    "keep first FFN out": {"keep_first_ffn": True, "smooth_alpha": None},
    "keep + alpha 0.85 (shipped)": {"keep_first_ffn": True, "smooth_alpha": 0.85},
    "keep + alpha 0.75": {"keep_first_ffn": True, "smooth_alpha": 0.75},
}


def run() -> dict[str, Any]:
    import openvino as ov

    from analyzer.embedding.model_files import packaged_model_path
    from analyzer.embedding.openvino_backend import OpenVinoEncoder, calibration_feeds, ensure_model
    from analyzer.embedding.quantize import quantize_static

    texts, comments = speed_texts(2000), polis_comments(1500)
    reference = make_encoder("torch", None, True)
    ref_texts, ref_comments = reference(texts), reference(comments)
    feeds = calibration_feeds()
    full = ensure_model(weights="full").path
    tokenizer = packaged_model_path() / "tokenizer.json"
    rows = []
    with tempfile.TemporaryDirectory(prefix="civicpulse-int8-recipes-") as tmp:
        encoders = {"dynamic int8 (reference)": make_encoder("openvino", "int8", True)}
        for name, kwargs in RECIPES.items():
            print(f"quantising: {name} ...", flush=True)
            model, _ = quantize_static(ov.Core().read_model(str(full)), feeds, **kwargs)
            path = Path(tmp) / name.replace(" ", "_").replace("(", "").replace(")", "")
            path.mkdir()
            ov.save_model(model, str(path / "model.xml"), compress_to_fp16=False)
            encoders[name] = OpenVinoEncoder(path / "model.xml", tokenizer, weights="int8-static")
        for name, enc in encoders.items():
            enc(texts[:64])
            started = time.perf_counter()
            vectors = enc(texts)
            seconds = time.perf_counter() - started
            rows.append(
                {
                    "recipe": name,
                    **RECIPES.get(name, {}),
                    "texts_per_s": len(texts) / seconds,
                    "boston": cosine_stats(vectors, ref_texts),
                    "comments": cosine_stats(enc(comments), ref_comments),
                }
            )
    return {
        "calibration_calls": len(feeds),
        "n_boston": len(texts),
        "n_comments": len(comments),
        "recipes": rows,
    }


def print_table(result: dict[str, Any]) -> None:
    print(
        f"\ncosine to sentence-transformers: {result['n_boston']} Boston texts, "
        f"{result['n_comments']} Polis comments (neither in the calibration set)"
    )
    head = (
        f"{'recipe':30s} {'texts/s':>8s} {'cos':>7s} {'p1':>7s} {'min':>7s} "
        f"{'c.cos':>7s} {'c.p1':>7s} {'c.min':>7s}"
    )
    print(head)
    print("-" * len(head))
    for r in result["recipes"]:
        b, c = r["boston"], r["comments"]
        print(
            f"{r['recipe']:30s} {r['texts_per_s']:8.1f} {b['cos_mean']:7.4f} {b['cos_p1']:7.4f} "
            f"{b['cos_min']:7.4f} {c['cos_mean']:7.4f} {c['cos_p1']:7.4f} {c['cos_min']:7.4f}"
        )
    print("  texts/s: one run each on a shared machine; embed_speed has the medians")


def main(argv: list[str] | None = None) -> int:
    require_data_raw("static_int8_recipes")
    result = run()
    print_table(result)
    write_result("static_int8_recipes", result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
