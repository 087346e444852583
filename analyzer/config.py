"""Settings: defaults, then ``civicpulse.toml`` (or ``$CIVICPULSE_CONFIG``), then environment variables.

Environment variables are ``CIVICPULSE_<FIELD>`` in upper case, e.g. ``CIVICPULSE_STORE_PATH``.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from analyzer.errors import InputError

# The checkout (or installed tree) that holds models/: relative model paths fall back to it.
PROJECT_ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Settings:
    store_path: Path = Path("var/civicpulse.duckdb")
    # "" means the packaged all-MiniLM-L6-v2; otherwise a local sentence-transformers folder.
    embed_model: str = ""
    # "openvino-int8-static" (OpenVINO, int8 weights and activations with scales calibrated at
    # build time: ~4.5x sentence-transformers, 0.9986 cosine: the default), "openvino-int8"
    # (int8 weights, dynamically quantised activations: ~4x, 0.9987 cosine), "openvino"
    # (bfloat16, ~3x, 0.99999 cosine), "torch" (sentence-transformers encode, float32) or
    # "onnx" (ONNX Runtime int8)
    embed_backend: str = "openvino-int8-static"
    embed_batch_size: int = 64
    models_dir: Path = Path("models")
    tagger_model: str = "models/boston-311"
    seed: int = 42
    keep_raw: bool = False
    api_host: str = "127.0.0.1"
    api_port: int = 8000
    ui_port: int = 8501
    api_url: str = "http://127.0.0.1:8000"
    read_public: bool = True
    cors_origins: tuple[str, ...] = field(default_factory=tuple)
    max_body_bytes: int = 1_000_000
    rate_limit_per_minute: int = 600

    def with_overrides(self, **kwargs: Any) -> Settings:
        return dataclasses.replace(self, **{k: v for k, v in kwargs.items() if v is not None})


def resolve_model_path(value: str | os.PathLike[str]) -> Path:
    """Where a configured model folder is: an absolute path as given; a relative one against the
    working directory when it exists there, else against the project root (``models/`` lives
    there), so ``civicpulse serve`` finds the shipped tagger from any folder. A path found in
    neither place is returned as given, so the error names what was configured."""
    path = Path(value).expanduser()
    if path.is_absolute() or path.exists():
        return path
    in_project = PROJECT_ROOT / path
    return in_project if in_project.exists() else path


def _coerce(name: str, value: Any, current: Any) -> Any:
    if isinstance(current, bool):
        if isinstance(value, bool):
            return value
        return str(value).strip().lower() in {"1", "true", "yes", "on"}
    if isinstance(current, int):
        return int(value)
    if isinstance(current, Path):
        return Path(value)
    if isinstance(current, tuple):
        if isinstance(value, str):
            return tuple(v.strip() for v in value.split(",") if v.strip())
        return tuple(value)
    return str(value)


def load_settings(config_path: str | os.PathLike[str] | None = None) -> Settings:
    """Build settings from defaults, the TOML file and the environment (in that order)."""
    base = Settings()
    values: dict[str, Any] = {}
    path = Path(config_path or os.environ.get("CIVICPULSE_CONFIG", "civicpulse.toml"))
    fields = {f.name: getattr(base, f.name) for f in dataclasses.fields(Settings)}
    if path.is_file():
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise InputError(f"invalid TOML: {exc}", file=str(path)) from None
        section = data.get("civicpulse", data)
        for key, value in section.items():
            if key not in fields:
                raise InputError(f"unknown setting {key!r}", file=str(path))
            values[key] = value
    for name in fields:
        env = os.environ.get(f"CIVICPULSE_{name.upper()}")
        if env is not None:
            values[name] = env
    coerced = {k: _coerce(k, v, fields[k]) for k, v in values.items()}
    return dataclasses.replace(base, **coerced)
