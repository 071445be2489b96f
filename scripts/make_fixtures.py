#!/usr/bin/env python3
"""Writes the binary fixtures under fixtures/ (stdlib only, deterministic output).

The PDFs are written object by object with a correct xref table, using the standard
Helvetica font with WinAnsiEncoding, so any conforming reader (lopdf, poppler) extracts
the same text. Run from the repository root: python3 scripts/make_fixtures.py
"""
import struct
import zlib
from pathlib import Path

OUT = Path(__file__).resolve().parent.parent / "fixtures"


def pdf(pages, compress=False):
    """pages: list of lists of text lines (an empty list makes a page with no text)."""
    objects = []  # bodies, object number = index + 1

    def add(body):
        objects.append(body)
        return len(objects)

    catalog = add(None)
    pages_obj = add(None)
    font = add(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>")
    kids = []
    for lines in pages:
        if lines:
            ops = [b"BT", b"/F1 12 Tf", b"14 TL", b"72 720 Td"]
            for line in lines:
                esc = line.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
                ops.append(b"(" + esc.encode("cp1252") + b") Tj T*")
            ops.append(b"ET")
        else:
            # A "scanned" page: only a filled rectangle, no text operators at all.
            ops = [b"0.5 g", b"72 72 468 648 re f"]
        stream = b"\n".join(ops)
        if compress:
            data = zlib.compress(stream)
            content = add(b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(data) + data + b"\nendstream")
        else:
            content = add(b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream")
        page = add(
            b"<< /Type /Page /Parent %d 0 R /MediaBox [0 0 612 792] /Contents %d 0 R "
            b"/Resources << /Font << /F1 %d 0 R >> >> >>" % (pages_obj, content, font)
        )
        kids.append(page)
    objects[catalog - 1] = b"<< /Type /Catalog /Pages %d 0 R >>" % pages_obj
    objects[pages_obj - 1] = b"<< /Type /Pages /Kids [%s] /Count %d >>" % (
        b" ".join(b"%d 0 R" % k for k in kids),
        len(kids),
    )
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for i, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % i + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for off in offsets:
        out += b"%010d 00000 n \n" % off
    out += b"trailer\n<< /Size %d /Root %d 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, catalog, xref)
    return bytes(out)


def png_1x1():
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00\xff\x00\x00")
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


HANDBOOK = [
    [
        "Lighthouse Keeping Handbook",
        "Chapter one covers the daily duties of a lighthouse keeper.",
        "The lamp must be lit thirty minutes before sunset every evening.",
        "Keepers record the weather in the station logbook at dawn.",
    ],
    [
        "Chapter two: Fog signals",
        "When visibility drops below two nautical miles the foghorn sounds.",
        "The foghorn blasts for three seconds every thirty seconds in dense fog.",
        "Compressed air for the horn is stored in two iron tanks.",
    ],
    [
        "Chapter three: Supplies",
        "Paraffin oil deliveries arrive by boat on the first Monday of each month.",
        "Spare wicks and mantles are kept in the copper cabinet by the stairs.",
        "A keeper orders replacement lenses from the Trinity workshop.",
    ],
]


def main():
    OUT.mkdir(exist_ok=True)
    (OUT / "handbook.pdf").write_bytes(pdf(HANDBOOK, compress=True))
    (OUT / "scanned.pdf").write_bytes(pdf([[], []]))
    good = pdf(HANDBOOK[:1])
    # A PDF cut off in its first object: the header is right, nothing after it is readable.
    (OUT / "corrupt.pdf").write_bytes(good[:60] + b"\x00garbage\xff" * 8)
    (OUT / "photo.png").write_bytes(png_1x1())


if __name__ == "__main__":
    main()
