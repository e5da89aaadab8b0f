"""Stream a DBN file (zstd or plain) as header + fixed-size record chunks, in bounded memory.

Why not databento's ``DBNStore``: it only *warns* on a truncated file and then writes the partial
data, and its readers either materialise the whole day or build pandas frames per 65k rows. Here:

* the input is hashed (sha256) while it is read, so the converter never reads it twice;
* zstd is decoded with ``decompressobj`` so that a frame that ends early is detected (``eof`` is
  False at end of input) - zstandard's ``stream_reader`` just returns short data - and the frame's
  XXH64 checksum is verified by zstd itself;
* a body that is not a whole number of records is an error, never silently dropped.
"""

from __future__ import annotations

import contextlib
import hashlib
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from cxq_data.errors import DataFormatError
from cxq_data.options.prefetch import prefetch

ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
DBN_MAGIC = b"DBN"
_PREFIX_LEN = 8  # b"DBN" + version byte + u32 metadata length
_READ_SIZE = 1 << 17  # compressed bytes per read: keeps each decompressed piece around 0.5-1 MB


class TruncatedDbnError(DataFormatError):
    """The file ends inside a zstd frame, inside the header or inside a record."""


@dataclass(frozen=True)
class DbnHeader:
    version: int  # as written in the file (1, 2 or 3), not upgraded
    metadata: Any  # databento_dbn.Metadata
    compressed: bool


class DbnByteStream:
    """Decompressed bytes of one DBN file, hashing the raw file bytes on the way."""

    def __init__(self, fh: BinaryIO, name: str) -> None:
        self._fh = fh
        self.name = name
        self.sha256 = hashlib.sha256()
        first = self._read_raw()
        if first.startswith(ZSTD_MAGIC):
            self.compressed = True
        elif first.startswith(DBN_MAGIC):
            self.compressed = False
        else:
            raise DataFormatError(f"{name}: not a DBN file (neither zstd nor 'DBN' magic at the start)")
        self._pending = first
        self._dobj: Any = None

    def _read_raw(self) -> bytes:
        data = self._fh.read(_READ_SIZE)
        self.sha256.update(data)
        return data

    def chunks(self) -> Iterator[bytes]:
        """Yield decompressed pieces until the end of the file; raise if a frame is cut short."""
        import zstandard

        data = self._pending
        while data:
            if not self.compressed:
                yield data
            else:
                yield from self._decompress(zstandard, data)
            data = self._read_raw()
        if self.compressed and self._dobj is not None and not self._dobj.eof:
            raise TruncatedDbnError(f"{self.name}: truncated file: the zstd frame ends early")

    def _decompress(self, zstandard: Any, data: bytes) -> Iterator[bytes]:
        while data:
            if self._dobj is None or self._dobj.eof:
                self._dobj = zstandard.ZstdDecompressor().decompressobj()
            try:
                out = self._dobj.decompress(data)
            except zstandard.ZstdError as exc:
                raise DataFormatError(f"{self.name}: corrupt zstd data: {exc}") from exc
            if out:
                yield out
            # bytes after a finished frame start the next frame (concatenated frames are valid zstd)
            data = self._dobj.unused_data if self._dobj.eof else b""


class RecordReader:
    """Splits the decompressed stream into the header and chunks of whole records."""

    def __init__(self, stream: DbnByteStream) -> None:
        self._stream = stream
        # decompression (GIL released) runs one thread ahead of the numpy work on the records
        self._pieces = prefetch(stream.chunks(), depth=16)
        self._buffer = bytearray()
        self._blocks: Iterator[bytearray] | None = None
        self.records_read = 0

    def _fill(self, size: int) -> bool:
        while len(self._buffer) < size:
            piece = next(self._pieces, None)
            if piece is None:
                return False
            self._buffer += piece
        return True

    def close(self) -> None:
        """Stop the read-ahead threads (also on error paths)."""
        if self._blocks is not None:
            self._blocks.close()  # type: ignore[attr-defined]  # a generator
        self._pieces.close()

    def read_header(self) -> DbnHeader:
        import databento_dbn

        name = self._stream.name
        if not self._fill(_PREFIX_LEN) or not self._buffer.startswith(DBN_MAGIC):
            raise DataFormatError(f"{name}: invalid DBN header (no 'DBN' prefix after decompression)")
        version = self._buffer[3]
        (length,) = struct.unpack_from("<I", self._buffer, 4)
        if not self._fill(_PREFIX_LEN + length):
            raise TruncatedDbnError(f"{name}: truncated file: the DBN metadata header is incomplete")
        raw = bytes(self._buffer[: _PREFIX_LEN + length])
        try:
            metadata = databento_dbn.Metadata.decode(raw, databento_dbn.VersionUpgradePolicy.AS_IS)
        except Exception as exc:  # databento_dbn raises its own DBNError / ValueError types
            raise DataFormatError(f"{name}: invalid DBN header (version byte {version}): {exc}") from exc
        del self._buffer[: _PREFIX_LEN + length]
        return DbnHeader(version=int(metadata.version), metadata=metadata, compressed=self._stream.compressed)

    def _take(self, want: int) -> bytearray:
        """Up to ``want`` bytes in a fresh buffer, copying each decompressed byte exactly once."""
        out = bytearray(want)
        view, pos = memoryview(out), 0
        rest = memoryview(bytes(self._buffer))  # what the header read left over
        self._buffer = bytearray()
        while pos < want:
            if not len(rest):
                piece = next(self._pieces, None)
                if piece is None:
                    break
                rest = memoryview(piece)
            n = min(want - pos, len(rest))
            view[pos : pos + n] = rest[:n]
            rest, pos = rest[n:], pos + n
        self._buffer = bytearray(rest)
        del view
        if pos < want:
            del out[pos:]
        return out

    def _iter_blocks(self, want: int) -> Iterator[bytearray]:
        while True:
            block = self._take(want)
            yield block
            if len(block) < want:
                return

    def iter_chunks(self, dtype: np.dtype, chunk_records: int) -> Iterator[np.ndarray]:
        """Yield record arrays of up to ``chunk_records``; a partial trailing record raises.

        Chunks are assembled from the decompressed pieces one ahead, on a helper thread: the
        copy then overlaps the caller's work on the previous chunk.
        """
        size = dtype.itemsize
        self._blocks = prefetch(self._iter_blocks(size * chunk_records), depth=1)
        for block in self._blocks:
            whole = len(block) - len(block) % size
            if whole:
                records = np.frombuffer(block, dtype=dtype, count=whole // size)
                self.records_read += len(records)
                yield records
            if len(block) < size * chunk_records:
                if len(block) != whole:
                    raise TruncatedDbnError(
                        f"{self._stream.name}: truncated file: {len(block) - whole} trailing byte(s) after "
                        f"{self.records_read} whole {size}-byte records"
                    )
                return


@contextlib.contextmanager
def open_records(fh: BinaryIO, path: Path | str) -> Iterator[tuple[DbnByteStream, RecordReader, DbnHeader]]:
    """Open a DBN stream, decode its header; the read-ahead thread stops when the block exits."""
    stream = DbnByteStream(fh, str(path))
    reader = RecordReader(stream)
    try:
        yield stream, reader, reader.read_header()
    finally:
        reader.close()
