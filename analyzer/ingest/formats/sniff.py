"""Look at a file once before reading it: hash, compression, container format, text encoding.

One pass over the bytes computes the sha256 (the identity used for idempotent re-ingest), checks
that the (decompressed) content is valid UTF-8 and looks for NUL bytes, so a binary file or a
cp1252 export is recognised before any row is parsed, not halfway through a transaction.
"""

from __future__ import annotations

import codecs
import hashlib
import zlib
from dataclasses import dataclass
from pathlib import Path

from analyzer.errors import InputError

GZIP_MAGIC = b"\x1f\x8b"
PARQUET_MAGIC = b"PAR1"
ZIP_MAGIC = b"PK\x03\x04"  # .xlsx, .ods and .zip
OLE_MAGIC = b"\xd0\xcf\x11\xe0"  # Excel 97-2003 .xls
HEAD_BYTES = 256 * 1024  # enough decoded text to sniff a delimiter and a header
_BLOCK = 1 << 20

# Encodings we accept when the content is not UTF-8; charset-normalizer only chooses among these,
# because on short Latin samples it otherwise happily answers cp1250 or mac_roman.
LEGACY_ENCODINGS = ("cp1252", "latin_1")
SAVE_AS = "save it as CSV (in Excel: File > Save As > CSV UTF-8) and ingest the .csv"


@dataclass(frozen=True)
class FileInfo:
    """What :func:`sniff` learnt about a file."""

    path: Path
    size: int
    sha256: str
    gzip: bool
    kind: str  # "csv" | "json" | "parquet" | "xlsx"
    encoding: str | None  # None for parquet and xlsx
    head: bytes  # the first HEAD_BYTES of the (decompressed) content


def sniff(path: str | Path) -> FileInfo:
    """Inspect ``path``; raise :class:`InputError` for missing, empty or binary files."""
    p = Path(path)
    name = str(path)
    if not p.exists():
        raise InputError("no such file", file=name)
    if p.is_dir():
        raise InputError("is a directory, not a file", file=name)
    size = p.stat().st_size
    if size == 0:
        raise InputError("empty file (0 bytes)", file=name)

    digest = hashlib.sha256()
    with open(p, "rb") as fh:
        first = fh.read(8)
    is_gzip = first[:2] == GZIP_MAGIC
    if _is_workbook(p, first):
        with open(p, "rb") as fh:
            while block := fh.read(_BLOCK):
                digest.update(block)
        return FileInfo(p, size, digest.hexdigest(), False, "xlsx", None, first)
    _refuse_office_files(p, first, name)

    if first[:4] == PARQUET_MAGIC:
        with open(p, "rb") as fh:
            while block := fh.read(_BLOCK):
                digest.update(block)
        return FileInfo(p, size, digest.hexdigest(), False, "parquet", None, first)

    head = bytearray()
    utf8 = codecs.getincrementaldecoder("utf-8")()
    utf8_ok = True
    bad_at: int | None = None
    has_nul = False
    offset = 0
    inflater = zlib.decompressobj(wbits=31) if is_gzip else None
    try:
        with open(p, "rb") as fh:
            while block := fh.read(_BLOCK):
                digest.update(block)
                if inflater is not None:
                    data = _inflate(inflater, block)
                    if inflater.eof and inflater.unused_data:
                        # concatenated gzip members (what `cat a.gz b.gz` makes) are one stream
                        rest = inflater.unused_data
                        inflater = zlib.decompressobj(wbits=31)
                        data += _inflate(inflater, rest)
                else:
                    data = block
                if len(head) < HEAD_BYTES:
                    head += data[: HEAD_BYTES - len(head)]
                if not has_nul and b"\x00" in data:
                    has_nul = True
                if utf8_ok:
                    try:
                        utf8.decode(data)
                    except UnicodeDecodeError as exc:
                        utf8_ok = False
                        bad_at = offset + exc.start
                offset += len(data)
            if utf8_ok:
                try:
                    utf8.decode(b"", final=True)
                except UnicodeDecodeError:
                    utf8_ok = False
                    bad_at = offset
    except zlib.error:
        raise InputError("corrupt gzip data", file=name) from None

    head_b = bytes(head)
    if head_b[:4] == PARQUET_MAGIC:  # a gzip-compressed Parquet file
        return FileInfo(p, size, digest.hexdigest(), True, "parquet", None, head_b[:8])
    if head_b.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        encoding = "utf-16"  # Excel's "Unicode text" export; NUL bytes are expected here
    elif has_nul:
        raise InputError("binary content (NUL bytes): not a CSV, JSON or Parquet file", file=name)
    elif head_b.startswith(codecs.BOM_UTF8):
        encoding = "utf-8-sig" if utf8_ok else _legacy_encoding(p, head_b, bad_at, is_gzip)
    elif utf8_ok:
        encoding = "utf-8"
    else:
        encoding = _legacy_encoding(p, head_b, bad_at, is_gzip)

    text_head = head_b.decode(encoding, errors="replace").lstrip("\ufeff")
    stripped = text_head.strip()
    if not stripped:
        raise InputError("empty file (only whitespace)", file=name)
    if _looks_binary(text_head):
        raise InputError("binary content: not a CSV, JSON or Parquet file", file=name)
    kind = "json" if stripped[0] in "[{" else "csv"
    return FileInfo(p, size, digest.hexdigest(), is_gzip, kind, encoding, head_b)


def _is_workbook(p: Path, first: bytes) -> bool:
    """An Excel 2007+ workbook (.xlsx / .xlsm): a ZIP archive with an ``xl/`` folder."""
    if first[:4] != ZIP_MAGIC:
        return False
    import zipfile

    try:
        with zipfile.ZipFile(p) as zf:
            return any(n.startswith("xl/") for n in zf.namelist())
    except (zipfile.BadZipFile, OSError):
        return False


def _refuse_office_files(p: Path, first: bytes, name: str) -> None:
    """Old spreadsheets and archives are not read: say what to do instead of "binary content"."""
    if first[:4] == OLE_MAGIC:
        raise InputError(
            f"an Excel 97-2003 workbook (.xls), not a table file; {SAVE_AS}", file=name
        )
    if first[:4] != ZIP_MAGIC:
        return
    import zipfile

    try:
        with zipfile.ZipFile(p) as zf:
            names = zf.namelist()
    except (zipfile.BadZipFile, OSError):
        names = []
    if p.suffix.lower() in {".xlsx", ".xlsm"}:
        raise InputError(f"an unreadable Excel workbook (no sheets found); {SAVE_AS}", file=name)
    if "content.xml" in names or p.suffix.lower() == ".ods":
        raise InputError(
            "an OpenDocument spreadsheet (.ods), not a table file; save it as CSV and ingest the "
            ".csv",
            file=name,
        )
    raise InputError("a ZIP archive; unzip it and ingest the CSV or JSON files inside", file=name)


def _inflate(inflater: zlib._Decompress, block: bytes) -> bytes:
    return inflater.decompress(block)


def _legacy_encoding(p: Path, head: bytes, bad_at: int | None, is_gzip: bool) -> str:
    """cp1252 or latin-1, chosen by charset-normalizer on the head plus the first bad region."""
    from charset_normalizer import from_bytes

    sample = head[:65536]
    if bad_at is not None and bad_at >= len(sample) and not is_gzip:
        # the first non-UTF-8 byte is past the head: show the detector that region too
        with open(p, "rb") as fh:
            fh.seek(max(0, bad_at - 4096))
            sample += b"\n" + fh.read(8192)
    best = from_bytes(sample, cp_isolation=list(LEGACY_ENCODINGS)).best()
    choice = best.encoding if best is not None and best.encoding in LEGACY_ENCODINGS else "cp1252"
    # cp1252 leaves five bytes undefined: check the whole file decodes, else latin-1, which
    # decodes every byte (a C-speed pass; far cheaper than failing halfway through an ingest)
    if choice == "cp1252" and not _decodes(p, "cp1252", is_gzip):
        choice = "latin_1"
    return choice


def _decodes(p: Path, encoding: str, is_gzip: bool) -> bool:
    import gzip

    decoder = codecs.getincrementaldecoder(encoding)()
    opener = gzip.open if is_gzip else open
    try:
        with opener(p, "rb") as fh:
            while block := fh.read(_BLOCK):
                decoder.decode(block)
            decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return False
    return True


def _looks_binary(text: str) -> bool:
    """Many control characters (other than tab/CR/LF) mean this is not text in any encoding."""
    sample = text[:65536]
    if not sample:
        return False
    controls = sum(1 for ch in sample if ord(ch) < 32 and ch not in "\t\r\n\x0c")
    return controls / len(sample) > 0.01
