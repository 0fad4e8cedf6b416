"""A small JPEG Lossless encoder (ITU-T T.81 Annex H, process 14) for test files.

No Python package here writes lossless JPEG, the transfer syntax many PACS export radiographs in, so the
tests make their own: one component, 2–16 bits, any of the seven predictors, point transform 0, and one
Huffman table in which every difference category (SSSS 0–16) has a 5-bit code. Decoders must read it
exactly back (the tests compare pixel for pixel); efficiency is irrelevant.
"""

from __future__ import annotations

import struct

import numpy as np

__all__ = ["encode_jpeg_lossless"]


def _predict(img: np.ndarray, predictor: int, precision: int) -> np.ndarray:
    """T.81 H.1.2.1: the prediction of each sample (first row uses Ra, first column Rb, origin 2^(P-1))."""
    x = img.astype(np.int64)
    pred = np.empty_like(x)
    ra = np.zeros_like(x)
    rb = np.zeros_like(x)
    rc = np.zeros_like(x)
    ra[:, 1:], rb[1:, :], rc[1:, 1:] = x[:, :-1], x[:-1, :], x[:-1, :-1]
    formulas = {1: ra, 2: rb, 3: rc, 4: ra + rb - rc, 5: ra + ((rb - rc) >> 1), 6: rb + ((ra - rc) >> 1),
                7: (ra + rb) >> 1}
    pred[:] = formulas[predictor]
    pred[0, 1:] = x[0, :-1]  # first line: Ra
    pred[1:, 0] = x[:-1, 0]  # first column: Rb
    pred[0, 0] = 1 << (precision - 1)
    return pred


def encode_jpeg_lossless(img: np.ndarray, precision: int, predictor: int = 1) -> bytes:
    """Encode a (rows, cols) array of unsigned ``precision``-bit samples as a lossless JPEG stream."""
    rows, cols = img.shape
    diff = (img.astype(np.int64) - _predict(img, predictor, precision)) % 65536
    diff = np.where(diff >= 32768, diff - 65536, diff).ravel()  # modulo 2^16, then signed (H.1.2.1)
    # Huffman table: 17 symbols (SSSS 0..16), each a 5-bit code 0..16 (canonical, never all ones)
    out = bytearray(b"\xff\xd8")
    out += b"\xff\xc4" + struct.pack(">H", 2 + 1 + 16 + 17) + b"\x00"
    out += bytes([0, 0, 0, 0, 17] + [0] * 11) + bytes(range(17))
    out += b"\xff\xc3" + struct.pack(">HBHHB", 11, precision, rows, cols, 1) + b"\x01\x11\x00"
    out += b"\xff\xda" + struct.pack(">HB", 8, 1) + b"\x01\x00" + bytes([predictor, 0, 0])
    bits = []
    for d in diff.tolist():
        ssss = 0 if d == 0 else int(abs(d)).bit_length()
        bits.append(format(ssss, "05b"))
        if 0 < ssss < 16:  # SSSS 16 (a difference of 32768) carries no extra bits
            extra = d if d > 0 else d - 1 + (1 << ssss)  # negative: one's complement in SSSS bits
            bits.append(format(extra & ((1 << ssss) - 1), f"0{ssss}b"))
    stream = "".join(bits)
    stream += "1" * (-len(stream) % 8)  # pad with ones (F.1.2.3)
    data = int(stream, 2).to_bytes(len(stream) // 8, "big") if stream else b""
    out += data.replace(b"\xff", b"\xff\x00")  # byte stuffing
    out += b"\xff\xd9"
    return bytes(out)
