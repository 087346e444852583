"""The Ray engine: embedding, sentiment and tagging as Ray Data batch jobs.

``civicpulse analyze --engine ray [--address HOST:PORT] [--workers N]`` runs the per-record work of
the analysis (embed, then score sentiment and, for ``tag predict``, tag) on a Ray cluster, or on a
local Ray instance when no address is given. The rest of the analysis (themes, emerging needs) stays
on the driver. How it fits with the store:

- Only texts the store's embedding cache lacks go to Ray, and identical texts once (keyed by the
  same text hash as the cache). Sentiment for records whose text was already embedded is scored on
  the driver from the cached vectors (no model inference needed for those).
- The dataset of (key, text) is built from Arrow chunks put into the object store one at a time;
  no Python object per row is made for Ray.
- ``map_batches`` runs a callable class, so each actor loads its models once; the pool has one actor
  per worker core (``--workers``, default the cluster's CPUs).
- Results stream back to the driver, which alone writes the store (DuckDB has one writer).
- Every actor embeds with the driver's model: the same model id (backend and precision) and the
  same build (``analyzer.embedding.build_id``), or it refuses to start (``RecordWorker``), as a
  node whose model was built apart from the driver's may give other vectors under the same key.

``ray`` is an optional dependency (``pip install 'civicpulse[distributed]'``) imported only when the
engine runs: the local engine never needs it.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import time
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from analyzer.analysis.results import SENTIMENT_COLUMNS, RecordResults
from analyzer.errors import InputError

if TYPE_CHECKING:
    import pyarrow as pa

    from analyzer.embedding.embedder import Embedder
    from analyzer.store.database import Store

log = logging.getLogger("civicpulse.distributed")

DEFAULT_LOCAL_CPUS = 2
# How long to wait for a cluster's address to answer before saying it is unreachable (ray.init
# itself retries for minutes on a wrong address).
CONNECT_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class RayOptions:
    """How to reach Ray and how to split the work.

    address : a running cluster (``HOST:PORT`` of its head, ``ray://HOST:PORT`` for Ray Client,
        or ``auto``); ``None`` starts a local instance with ``local_cpus`` CPUs for this run.
    workers : actors in the pool (each loads the models once); default: the cluster's CPUs
        divided by ``cpus_per_worker``.
    cpus_per_worker : CPUs each actor reserves and the threads its encoder uses.
    chunk_rows : texts per block (and per ``map_batches`` call). The default is the local
        engine's own chunk (``analyzer.embedding.embedder.CHUNK_TEXTS``): the encoders sort and batch texts by
        length within a chunk, and a vector depends (at ~1e-4) on the padding of its batch, so
        the same chunks give the same vectors bit for bit, hence the same themes. Smaller chunks
        spread a small job over more workers at ~0.99999 cosine to the local vectors.
    vector_dtype : "float32" or "float16" for the vectors sent back (float16 halves the
        transfer; the store keeps float16 either way).
    """

    address: str | None = None
    local_cpus: int = DEFAULT_LOCAL_CPUS
    workers: int | None = None
    cpus_per_worker: int = 1
    chunk_rows: int = 0  # 0: analyzer.embedding.embedder.CHUNK_TEXTS
    vector_dtype: str = "float32"

    def __post_init__(self) -> None:
        if self.local_cpus < 1:
            raise InputError(f"--ray-cpus must be at least 1, got {self.local_cpus}")
        if self.workers is not None and self.workers < 1:
            raise InputError(f"--workers must be at least 1, got {self.workers}")
        if self.cpus_per_worker < 1 or self.chunk_rows < 0:
            raise InputError("cpus per worker must be at least 1 and chunk rows not negative")
        if self.vector_dtype not in ("float32", "float16"):
            raise InputError(f"vector dtype must be float32 or float16, got {self.vector_dtype}")


def import_ray() -> Any:
    """``ray`` (with Ray Data), or a one-line InputError saying how to install it."""
    try:
        import ray
        import ray.data
    except ImportError:
        raise InputError(
            "the ray engine needs Ray: pip install 'civicpulse[distributed]' (ray[data]==2.60.0)"
        ) from None
    return ray


def check_address(address: str) -> str:
    """Validate a cluster address and check that it answers; returns it, or raises InputError."""
    address = address.strip()
    if address == "auto":
        return address
    hostport = address.removeprefix("ray://")
    host, sep, port = hostport.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise InputError(
            f"--address {address!r} is not HOST:PORT (e.g. 10.0.0.5:6379 or ray://10.0.0.5:10001)"
        )
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=CONNECT_TIMEOUT_S):
            pass
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise InputError(f"--address {address}: no Ray cluster answers there ({reason})") from None
    return address


def _quiet_ray_data(ray: Any) -> None:
    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False
    ctx.enable_operator_progress_bars = False
    ctx.enable_auto_log_stats = False
    ctx.verbose_stats_logs = False
    for name in ("ray", "ray.data", "ray.data._internal"):
        logging.getLogger(name).setLevel(logging.ERROR)
    # A failed job is one line (``_job_errors``); Ray Data would also log its stack trace (e.g.
    # for an actor that refused to start: another build or precision than the driver's).
    for name in (
        "ray.data.exceptions",
        "ray.data._internal.execution.operators.actor_pool_map_operator",
    ):
        logging.getLogger(name).setLevel(logging.CRITICAL)


@contextlib.contextmanager
def ray_session(options: RayOptions) -> Iterator[int]:
    """Connect to (or start) Ray; yields the cluster's CPU count. Shuts down what it started."""
    ray = import_ray()
    started = False
    _quiet_ray_data(ray)
    if not ray.is_initialized():
        common = {
            "include_dashboard": False,
            "logging_level": logging.ERROR,
            "log_to_driver": False,
            "configure_logging": True,
        }
        if options.address:
            address = check_address(options.address)
            try:
                ray.init(address=address, **common)
            except (ConnectionError, RuntimeError, ValueError) as exc:
                first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                raise InputError(f"--address {address}: {first}") from None
        else:
            ray.init(num_cpus=options.local_cpus, **common)
        started = True
    _quiet_ray_data(ray)
    try:
        yield int(ray.cluster_resources().get("CPU", 0))
    finally:
        if started:
            ray.shutdown()


class RecordWorker:
    """The per-record work of one Ray actor: models load once in ``__init__``.

    A batch is ``{"key": str[n], "text": str[n]}``; the result adds ``embedding`` (n, dim) and, as
    asked, ``sentiment``/``sentiment_score`` and the tagger's ``predicted_label``,
    ``confidence``, ``needs_review``, ``alternatives`` (JSON), ``possible_new_category``.
    """

    def __init__(
        self,
        *,
        embed_model: str,
        embed_backend: str,
        embed_batch_size: int,
        expected_model_id: str,
        expected_build_id: str,
        threads: int,
        sentiment: bool,
        tagger_path: str | None,
        vector_dtype: str,
    ) -> None:
        # Use exactly the cores Ray reserved for this actor (the encoders default to every core).
        os.environ["CIVICPULSE_ONNX_THREADS"] = str(threads)
        os.environ.setdefault("OMP_NUM_THREADS", str(threads))
        from analyzer.embedding.embedder import get_embedder

        self.embedder = get_embedder(embed_model or None, embed_backend, embed_batch_size)
        check_same_model(self.embedder, expected_model_id, expected_build_id)
        if embed_backend == "torch":
            import torch

            torch.set_num_threads(threads)
        self.sentiment = None
        if sentiment:
            from analyzer.sentiment.model import load_default

            self.sentiment = load_default()
        self.tagger = None
        if tagger_path:
            from analyzer.tagging.supervised import load_tagger

            self.tagger = load_tagger(tagger_path, embed_backend=embed_backend)
        self.vector_dtype = np.dtype(vector_dtype)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        texts = ["" if t is None else str(t) for t in batch["text"]]
        emb = self.embedder.encode_unique(texts)
        out: dict[str, np.ndarray] = {
            "key": np.asarray(batch["key"]),
            "embedding": emb.astype(self.vector_dtype),
        }
        if self.sentiment is not None:
            from analyzer.sentiment.model import analyze_sentiment

            scored = analyze_sentiment(texts, embeddings=emb, model=self.sentiment)
            out["sentiment"] = scored["sentiment"].to_numpy(dtype=object)
            out["sentiment_score"] = scored["sentiment_score"].to_numpy(dtype=np.float64)
        if self.tagger is not None:
            rows = self.tagger.predict_detailed(texts, embeddings=emb)
            out["predicted_label"] = np.array([r["predicted_label"] for r in rows], dtype=object)
            out["confidence"] = np.array([r["confidence"] for r in rows], dtype=np.float64)
            out["needs_review"] = np.array([r["needs_review"] for r in rows], dtype=bool)
            out["alternatives"] = np.array(
                [json.dumps(r["alternatives"]) for r in rows], dtype=object
            )
            out["possible_new_category"] = np.array(
                [r["possible_new_category"] for r in rows], dtype=bool
            )
        return out


def check_same_model(embedder: Embedder, expected_model_id: str, expected_build_id: str) -> None:
    """Refuse (RuntimeError, one line) a worker whose embedder differs from the driver's: another
    backend or precision, or another build of the same model (vectors of either would be cached
    under the driver's model id)."""
    from analyzer.embedding.build_id import split_model_id

    family, _ = split_model_id(expected_model_id)
    if embedder.model_family != family:
        # e.g. a node without bfloat16 support would make f32 vectors under a bf16 cache key
        raise RuntimeError(
            f"this node embeds as {embedder.model_family}, the driver as {family}; give every "
            "node the same CPU kind or set embed_backend"
        )
    if embedder.build_id != expected_build_id:
        raise RuntimeError(
            f"this node's embedding model is build {embedder.build_id} "
            f"({embedder.files_.folder}), the driver's build {expected_build_id}; copy the "
            "driver's built model folder to this node and check it with `civicpulse models "
            "verify` (README: Running on a Ray cluster)"
        )


@dataclass
class JobStats:
    texts: int = 0
    workers: int = 0
    cluster_cpus: int = 0
    seconds: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    def as_manifest(self, options: RayOptions) -> dict[str, Any]:
        import ray

        return {
            "name": "ray",
            "address": options.address or f"local ({options.local_cpus} CPUs)",
            "ray_version": ray.__version__,
            "workers": self.workers,
            "cpus_per_worker": options.cpus_per_worker,
            "cluster_cpus": self.cluster_cpus,
            "texts_sent": self.texts,
            "job_seconds": round(self.seconds, 3),
            **self.extra,
        }


def _local_chunk() -> int:
    """Texts the local engine encodes per call (its length sorting and batching work per chunk)."""
    from analyzer.embedding import embedder as embed

    return int(getattr(embed, "CHUNK_TEXTS", 4096))


def _arrow_chunks(keys: Sequence[str], texts: Sequence[str], rows: int) -> Iterator[pa.Table]:
    import pyarrow as pa

    for start in range(0, len(keys), rows):
        yield pa.table(
            {
                "key": pa.array(keys[start : start + rows], type=pa.string()),
                "text": pa.array(texts[start : start + rows], type=pa.string()),
            }
        )


def map_records(
    keys: Sequence[str],
    texts: Sequence[str],
    embedder: Embedder,
    options: RayOptions,
    cluster_cpus: int,
    *,
    sentiment: bool = True,
    tagger_path: str | None = None,
    stats: JobStats | None = None,
) -> Iterator[dict[str, np.ndarray]]:
    """Run the record job over (key, text) pairs in an open ``ray_session``.

    The pairs go to the object store as Arrow blocks, one chunk in driver memory at a time.
    Yields result batches (numpy columns, see ``RecordWorker``) as they finish, in no fixed order.
    """
    ray = import_ray()
    n = len(keys)
    if n == 0:
        return
    rows = options.chunk_rows or _local_chunk()
    workers = options.workers or max(1, cluster_cpus // options.cpus_per_worker)
    # A chunk is one actor call: more actors than chunks would only load models to idle.
    workers = max(1, min(workers, -(-n // rows)))
    # Chunks in the local engine's order and size: each actor call embeds exactly what one
    # chunk of the local engine would.
    refs = [ray.put(table) for table in _arrow_chunks(keys, texts, rows)]
    if stats is not None:
        stats.texts, stats.workers, stats.cluster_cpus = n, workers, cluster_cpus
    with warnings.catch_warnings():
        # max_restarts as a map_batches keyword is how Ray 2.60 documents it, and warns about
        warnings.filterwarnings("ignore", message=".*ray_remote_args.*deprecated")
        ds = ray.data.from_arrow_refs(refs).map_batches(
            RecordWorker,
            fn_constructor_kwargs={
                "embed_model": str(embedder.model or ""),
                "embed_backend": embedder.backend,
                "embed_batch_size": embedder.batch_size,
                "expected_model_id": embedder.model_id,
                "expected_build_id": embedder.build_id,
                "threads": options.cpus_per_worker,
                "sentiment": sentiment,
                "tagger_path": tagger_path,
                "vector_dtype": options.vector_dtype,
            },
            batch_size=rows,
            batch_format="numpy",
            compute=ray.data.ActorPoolStrategy(size=workers),
            num_cpus=options.cpus_per_worker,
            # A lost actor fails the job instead of restarting: a re-run resumes from the store's
            # cache, which already holds every batch that came back. (Restartable actors also make
            # Ray's core print an error-level notice on the driver's stderr for every actor.)
            max_restarts=0,
        )
    yield from ds.iter_batches(batch_size=None, batch_format="numpy")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    for line in text.splitlines():
        if "Error" in line and ":" in line:
            return line.strip()[:300]
    return (text.splitlines()[0] if text else type(exc).__name__)[:300]


@contextlib.contextmanager
def _job_errors() -> Iterator[None]:
    """A failed Ray job becomes one RuntimeError line (the CLI prints it, exit 1)."""
    try:
        yield
    except InputError:
        raise
    except Exception as exc:
        ray = import_ray()
        if isinstance(exc, ray.exceptions.RayError):
            raise RuntimeError(f"Ray job failed: {_first_line(exc)}") from None
        raise


# -- the analysis stage ------------------------------------------------------------------------


def analyze_records(
    store: Store,
    records: pd.DataFrame,
    embedder: Embedder,
    options: RayOptions,
    *,
    progress: bool = False,
) -> RecordResults:
    """Embed (cache first) and score sentiment for ``records`` on Ray (id, text, and
    has_sentiment for the default sentiment model, as ``pipeline.load_records`` gives them).

    Returns the vectors of every record, in order (L2-normalised float32, as the local engine's
    ``Embedder.embed``), and the sentiment rows of records without one for the current model.
    New embeddings are written to the store's cache as their batches arrive.
    """
    from analyzer.common.hashing import text_hash
    from analyzer.common.vectors import normalise_rows
    from analyzer.sentiment.model import analyze_sentiment, load_default

    texts = records["text"].astype(str).tolist()
    hashes = [text_hash(t) for t in texts]
    first_row: dict[str, int] = {}
    for i, h in enumerate(hashes):
        first_row.setdefault(h, i)
    vectors: dict[str, np.ndarray] = dict(
        store.cached_embeddings(embedder.model_id, list(first_row))
    )
    todo = [h for h in first_row if h not in vectors]
    sentiment_model = load_default()
    model_id = sentiment_model.model_id
    scored: dict[str, tuple[str, float]] = {}
    stats = JobStats()
    t0 = time.perf_counter()
    import_ray()
    # Nothing new to embed: no need to start or reach Ray at all.
    session = ray_session(options) if todo else contextlib.nullcontext(0)
    with session as cpus, _job_errors():
        stats.cluster_cpus = cpus
        bar = _progress(len(todo), progress)
        todo_texts = [texts[first_row[h]] for h in todo]
        batches = map_records(todo, todo_texts, embedder, options, cpus, stats=stats)
        for batch in batches:
            keys = [str(k) for k in batch["key"]]
            emb = np.asarray(batch["embedding"], dtype=np.float32)
            store.put_embeddings(embedder.model_id, keys, emb)
            vectors.update(zip(keys, emb, strict=True))
            scored.update(
                zip(
                    keys,
                    zip(batch["sentiment"], batch["sentiment_score"].tolist(), strict=True),
                    strict=True,
                )
            )
            bar(len(keys))
    stats.seconds = time.perf_counter() - t0
    engine = stats.as_manifest(options)
    if not hashes:
        return RecordResults(
            np.zeros((0, 0), np.float32),
            pd.DataFrame(columns=list(SENTIMENT_COLUMNS)),
            model_id,
            engine,
        )
    if todo:  # every vector as the cache holds it (float16), as the local engine uses them
        vectors = dict(store.cached_embeddings(embedder.model_id, list(first_row)))
    matrix = normalise_rows(np.vstack([vectors[h] for h in hashes]))

    need = ~records["has_sentiment"].to_numpy(dtype=bool)
    labels = np.empty(len(records), dtype=object)
    scores = np.zeros(len(records), dtype=np.float64)
    from_ray = np.array([h in scored for h in hashes]) & need
    for i in np.flatnonzero(from_ray):
        labels[i], scores[i] = scored[hashes[i]]
    # Texts embedded in an earlier run but not yet scored (e.g. a new sentiment model): the
    # cached vectors make this cheap, so the driver does it.
    rest = need & ~from_ray
    if rest.any():
        local = analyze_sentiment(
            [texts[i] for i in np.flatnonzero(rest)], embeddings=matrix[rest], model=sentiment_model
        )
        labels[rest] = local["sentiment"].to_numpy()
        scores[rest] = local["sentiment_score"].to_numpy()
    engine["sentiment_on_driver"] = int(rest.sum())
    rows = pd.DataFrame(
        {
            "record_id": records.loc[need, "id"].to_numpy(),
            "model_id": model_id,
            "label": labels[need].astype(str),
            "score": scores[need],
        },
        columns=list(SENTIMENT_COLUMNS),
    )
    return RecordResults(matrix, rows, model_id, engine)


def _progress(total: int, show: bool) -> Any:
    if not show or total == 0:
        return lambda n: None
    from tqdm import tqdm

    bar = tqdm(total=total, desc="embedding on ray", unit="text")

    return bar.update


# -- stateless jobs (tag predict, benchmarks) ------------------------------------------------


def process_texts(
    texts: Sequence[str],
    embedder: Embedder,
    options: RayOptions,
    *,
    sentiment: bool = False,
    tagger_path: str | None = None,
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Run the record job over ``texts`` (identical texts once); columns in input order.

    Returns ``{"embedding": (n, dim) float32, and the sentiment / tagger columns asked for}``
    and the engine facts for a manifest.
    """
    from analyzer.common.hashing import text_hash

    texts = ["" if t is None else str(t) for t in texts]
    hashes = [text_hash(t) for t in texts]
    first_row: dict[str, int] = {}
    for i, h in enumerate(hashes):
        first_row.setdefault(h, i)
    keys = list(first_row)
    stats = JobStats()
    t0 = time.perf_counter()
    parts: list[dict[str, np.ndarray]] = []
    with ray_session(options) as cpus, _job_errors():
        stats.cluster_cpus = cpus
        parts.extend(
            map_records(
                keys,
                [texts[first_row[h]] for h in keys],
                embedder,
                options,
                cpus,
                sentiment=sentiment,
                tagger_path=tagger_path,
                stats=stats,
            )
        )
    stats.seconds = time.perf_counter() - t0
    engine = stats.as_manifest(options)
    if not parts:
        return {"embedding": np.zeros((0, 0), dtype=np.float32)}, engine
    merged = {
        col: np.concatenate([np.asarray(p[col]) for p in parts]) for col in parts[0] if col != "key"
    }
    position = {str(k): i for i, k in enumerate(np.concatenate([p["key"] for p in parts]))}
    order = np.array([position[h] for h in hashes], dtype=np.int64)
    out = {col: values[order] for col, values in merged.items()}
    out["embedding"] = out["embedding"].astype(np.float32)
    return out, engine
