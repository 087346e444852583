"""What every stage shares, one copy each: hashing, vectors, the UTC clock, estimator parameters,
model bundles and the spaCy loader."""

from analyzer.common.clock import as_utc, new_run_id, utc_now, utc_stamp
from analyzer.common.hashing import sha256_file, text_hash
from analyzer.common.params import Params
from analyzer.common.vectors import decode_vectors, encode_vector, normalise_rows

__all__ = [
    "Params",
    "as_utc",
    "decode_vectors",
    "encode_vector",
    "new_run_id",
    "normalise_rows",
    "sha256_file",
    "text_hash",
    "utc_now",
    "utc_stamp",
]
