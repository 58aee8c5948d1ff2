#!/usr/bin/env python3
"""Write a 512x512 RGB gradient PNG with the standard library only.

usage: make_img512.py [OUT.png]
"""
import struct
import sys
import zlib

out = sys.argv[1] if len(sys.argv) > 1 else "img512.png"
H = W = 512
rows = []
for y in range(H):
    row = bytearray(b"\x00")  # PNG filter: none
    for x in range(W):
        row += bytes((x * 255 // (W - 1), y * 255 // (H - 1), (x + y) * 255 // (W + H - 2)))
    rows.append(bytes(row))


def chunk(tag, data):
    crc = zlib.crc32(tag + data) & 0xFFFFFFFF
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", crc)


png = (
    b"\x89PNG\r\n\x1a\n"
    + chunk(b"IHDR", struct.pack(">IIBBBBB", W, H, 8, 2, 0, 0, 0))
    + chunk(b"IDAT", zlib.compress(b"".join(rows), 6))
    + chunk(b"IEND", b"")
)
with open(out, "wb") as f:
    f.write(png)
print("wrote", out, W, "x", H)
