"""What every stage shares, one copy each: hashing, vectors, the UTC clock, estimator parameters,
model bundles and the spaCy loader."""

from analyzer.common.clock import (
    EARLIEST,
    LATEST,
    TimeBoundError,
    as_utc,
    clamp_utc,
    new_run_id,
    parse_time,
    parse_time_range,
    utc_now,
    utc_stamp,
)
from analyzer.common.hashing import sha256_file, text_hash
from analyzer.common.params import Params
from analyzer.common.vectors import decode_vectors, encode_vector, normalise_rows

__all__ = [
    "EARLIEST",
    "LATEST",
    "Params",
    "TimeBoundError",
    "as_utc",
    "clamp_utc",
    "decode_vectors",
    "encode_vector",
    "new_run_id",
    "normalise_rows",
    "parse_time",
    "parse_time_range",
    "sha256_file",
    "text_hash",
    "utc_now",
    "utc_stamp",
]
