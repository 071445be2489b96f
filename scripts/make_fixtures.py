#!/usr/bin/env python3
"""Writes the binary fixtures under fixtures/ (stdlib only, deterministic output).

The PDFs are written object by object with a correct xref table, using the standard
Helvetica font with WinAnsiEncoding, so any conforming reader (lopdf, poppler) extracts
the same text. Run from the repository root: python3 scripts/make_fixtures.py
"""
import hashlib
import struct
import zlib
from pathlib import Path

OUT = Path(__file__).resolve().parent.parent / "fixtures"


# PDF standard security handler, revision 2 (RC4, 40-bit): PDF 1.7 spec, algorithms 3.1-3.4.
PAD = bytes.fromhex("28BF4E5E4E758A4164004E56FFFA01082E2E00B6D0683E802F0CA9FE6453697A")
FILE_ID = hashlib.md5(b"ragworker fixture").digest()
PERMISSIONS = -44


def rc4(key, data):
    s = list(range(256))
    j = 0
    for i in range(256):
        j = (j + s[i] + key[i % len(key)]) % 256
        s[i], s[j] = s[j], s[i]
    out = bytearray()
    i = j = 0
    for byte in data:
        i = (i + 1) % 256
        j = (j + s[i]) % 256
        s[i], s[j] = s[j], s[i]
        out.append(byte ^ s[(s[i] + s[j]) % 256])
    return bytes(out)


def security(user_password, owner_password):
    """Returns (file key, /Encrypt dictionary body)."""
    pad = lambda p: (p.encode("latin-1") + PAD)[:32]
    o = rc4(hashlib.md5(pad(owner_password)).digest()[:5], pad(user_password))
    key = hashlib.md5(pad(user_password) + o + struct.pack("<i", PERMISSIONS) + FILE_ID).digest()[:5]
    u = rc4(key, PAD)
    body = b"<< /Filter /Standard /V 1 /R 2 /O <%s> /U <%s> /P %d >>" % (
        o.hex().encode(), u.hex().encode(), PERMISSIONS)
    return key, body


def object_key(key, num):
    return hashlib.md5(key + struct.pack("<i", num)[:3] + b"\x00\x00").digest()[:10]


def pdf(pages, compress=False, user_password=None, owner_password="owner", raw_pages=None, to_unicode=None, outline=None,
        rotate=None, font_objects=None, xref=True):
    """pages: list of lists of text lines (an empty list makes a page with no text).
    rotate: a /Rotate value per page (None: no /Rotate).
    font_objects: a function given `add` (which adds an object and returns its number) that
    adds the objects of font /F1 and returns the font's number, instead of Helvetica.
    Without xref, the file has no cross-reference table and no startxref (pdfminer's
    simple1.pdf is written so).
    With user_password (possibly ""), streams are RC4-encrypted as the standard handler does.
    outline: bookmarks as (title, page index) pairs, all at the top level."""
    objects = []  # bodies, object number = index + 1
    key = None
    if user_password is not None:
        key, encrypt_body = security(user_password, owner_password)

    def stream_obj(data, extra=b""):
        num = len(objects) + 1
        if key is not None:
            data = rc4(object_key(key, num), data)
        return b"<< /Length %d%s >>\nstream\n" % (len(data), extra) + data + b"\nendstream"

    def add(body):
        objects.append(body)
        return len(objects)

    catalog = add(None)
    pages_obj = add(None)
    if font_objects is not None:
        font = font_objects(add)
    elif to_unicode is not None:
        cmap = add(stream_obj(to_unicode))
        font = add(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding /ToUnicode %d 0 R >>" % cmap)
    else:
        font = add(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>")
    kids = []
    for n, lines in enumerate(pages if raw_pages is None else raw_pages):
        if raw_pages is not None:
            ops = [lines]
        elif lines:
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
            content = add(stream_obj(zlib.compress(stream), b" /Filter /FlateDecode"))
        else:
            content = add(stream_obj(stream))
        turn = b" /Rotate %d" % rotate[n] if rotate and rotate[n] else b""
        page = add(
            b"<< /Type /Page /Parent %d 0 R /MediaBox [0 0 612 792] /Contents %d 0 R "
            b"/Resources << /Font << /F1 %d 0 R >> >>%s >>" % (pages_obj, content, font, turn)
        )
        kids.append(page)
    outlines = b""
    if outline:
        root = add(None)
        items = [add(None) for _ in outline]
        for i, ((title, page_index), num) in enumerate(zip(outline, items)):
            links = b""
            if i > 0:
                links += b" /Prev %d 0 R" % items[i - 1]
            if i + 1 < len(items):
                links += b" /Next %d 0 R" % items[i + 1]
            objects[num - 1] = b"<< /Title (%s) /Parent %d 0 R /Dest [%d 0 R /XYZ 0 792 0]%s >>" % (
                title.encode("cp1252"), root, kids[page_index], links)
        objects[root - 1] = b"<< /Type /Outlines /First %d 0 R /Last %d 0 R /Count %d >>" % (
            items[0], items[-1], len(items))
        outlines = b" /Outlines %d 0 R" % root
    objects[catalog - 1] = b"<< /Type /Catalog /Pages %d 0 R%s >>" % (pages_obj, outlines)
    objects[pages_obj - 1] = b"<< /Type /Pages /Kids [%s] /Count %d >>" % (
        b" ".join(b"%d 0 R" % k for k in kids),
        len(kids),
    )
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for i, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % i + body + b"\nendobj\n"
    trailer_extra = b""
    if key is not None:
        offsets.append(len(out))
        encrypt_num = len(objects) + 1
        out += b"%d 0 obj\n" % encrypt_num + encrypt_body + b"\nendobj\n"
        objects.append(encrypt_body)
        trailer_extra = b" /Encrypt %d 0 R /ID [<%s> <%s>]" % (encrypt_num, FILE_ID.hex().encode(), FILE_ID.hex().encode())
    start = len(out)
    if xref:
        out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
        for off in offsets:
            out += b"%010d 00000 n \n" % off
    out += b"trailer\n<< /Size %d /Root %d 0 R%s >>\n" % (len(objects) + 1, catalog, trailer_extra)
    if xref:
        out += b"startxref\n%d\n" % start
    out += b"%%EOF\n"
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


# Ligatures: code 0x01 draws the "fi" glyph, code 0x02 "fl"; the ToUnicode CMap maps them
# back to two letters each, as TeX and InDesign output does.
LIGATURE_CMAP = b"""/CIDInit /ProcSet findresource begin
12 dict begin
begincmap
/CMapName /Ligatures def
/CMapType 2 def
1 begincodespacerange
<00> <FF>
endcodespacerange
2 beginbfchar
<01> <00660069>
<02> <0066006C>
endbfchar
1 beginbfrange
<20> <7E> <0020>
endbfrange
endcmap
CMapName currentdict /CMap defineresource pop
end
end"""


def ligature_page():
    lines = [
        b"The \x01eld of \x02owers was \x01lled with butter\x02ies.",
        b"Our of\x02ine of\x01ce keeps \x01nancial \x01les safe.",
    ]
    ops = [b"BT", b"/F1 12 Tf", b"14 TL", b"72 720 Td"]
    ops += [b"(" + l + b") Tj T*" for l in lines]
    ops.append(b"ET")
    return b"\n".join(ops)


def typeset_page(lines):
    """lines: (font size, text) from the top of the page down; an empty text leaves a gap.
    Each line is placed on its own, as word processors and TeX place them."""
    ops, y = [], 740
    for size, text in lines:
        y -= size * 1.3 if text else size
        if text:
            esc = text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
            ops.append(b"BT /F1 %d Tf 72 %d Td (%s) Tj ET" % (size, y, esc.encode("cp1252")))
    return b"\n".join(ops)


# A short FAQ typeset as a word processor would: a title, a table of contents with dot
# leaders, a running header with the page number, headings set larger than the 11-point body,
# and a question printed at the foot of page 2 whose answer is on page 3.
FAQ_PAGES = [
    [(20, "Harbour FAQ"), (11, ""), (14, "Contents"),
     (11, "1 Moorings . . . . . . . . . . . . . . . . . . . . . . 2"),
     (11, "1.1 Where can visitors moor? . . . . . . . . . . . . 2"),
     (11, "1.2 When is the harbour office open? . . . . . . . 2"),
     (11, "2 Fuel . . . . . . . . . . . . . . . . . . . . . . . . . 3"),
     (11, "2.1 Where is the fuel pontoon? . . . . . . . . . . . 3")],
    [(9, "Harbour FAQ 2"), (11, ""), (14, "1 Moorings"), (11, ""),
     (12, "1.1 Where can visitors moor?"),
     (11, "Visitors moor on the pontoon by the lifeboat station, rafted three deep."),
     (11, "Pay the dues at the office before you leave the harbour."),
     (11, ""), (11, ""), (11, ""),
     (12, "1.2 When is the harbour office open?")],
    [(9, "Harbour FAQ 3"), (11, ""),
     (11, "The office opens at eight and closes at six, later in summer."),
     (11, "Out of hours, ring the bell by the fuel pontoon."),
     (11, ""), (14, "2 Fuel"), (11, ""),
     (12, "2.1 Where is the fuel pontoon?"),
     (11, "At the end of the north quay, below the harbour office.")],
    [(9, "Harbour FAQ 4"), (11, ""),
     (11, "Diesel is sold from seven in the morning; petrol only on request.")],
]


def two_column_page():
    """Left column at x=72, right column at x=320, written column by column (as LaTeX and
    word processors write them); each column is one paragraph wrapped over several lines."""
    left = ["Tidal power stations use the rise", "and fall of the sea to turn", "turbines built into a barrage", "across an estuary mouth."]
    right = ["Wave farms instead float on the", "surface and capture the motion", "of passing swells with hinged", "segments and hydraulic pumps."]
    ops = [b"BT", b"/F1 11 Tf", b"13 TL", b"72 720 Td"]
    ops += [b"(" + l.encode() + b") Tj T*" for l in left]
    ops += [b"ET", b"BT", b"/F1 11 Tf", b"13 TL", b"320 720 Td"]
    ops += [b"(" + l.encode() + b") Tj T*" for l in right]
    ops.append(b"ET")
    return b"\n".join(ops)


def text_at(x, y, text, size=11, matrix=(1, 0, 0, 1)):
    """One piece of text at (x, y), its baseline along the matrix's first column."""
    esc = text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
    a, b, c, d = matrix
    return b"BT /F1 %d Tf %d %d %d %d %d %d Tm (%s) Tj ET" % (size, a, b, c, d, x, y, esc.encode("cp1252"))


def landscape_page():
    """A landscape page as LaTeX's pdflscape makes one: /Rotate 90 on the page, the text
    drawn running up the portrait page (baseline turned 90 degrees), one line per Tm."""
    lines = ["Quarterly tonnage by quay, landed and shipped.",
             "The north quay handled most of the grain this spring.",
             "Timber arrived mainly at the south quay in March."]
    return b"\n".join(text_at(120 + 16 * i, 72, line, matrix=(0, 1, -1, 0)) for i, line in enumerate(lines))


# A class diagram as a word processor draws one: each box's frame, then its labels in the
# order they were added (attributes before the class name), boxes side by side.
DIAGRAM = [
    (300, 600, "Invoice"), (72, 560, "number: Integer"), (72, 600, "Customer"),
    (300, 560, "amount: Decimal"), (72, 575, "name: String"), (300, 575, "date: Date"),
    (190, 470, "places"),
]


def diagram_page():
    ops = [b"0.5 w 60 540 180 80 re S 288 540 180 80 re S 240 580 m 288 580 l S"]
    ops += [text_at(x, y, text) for x, y, text in DIAGRAM]
    return b"\n".join(ops)


def row_table_page():
    """Two columns of prose drawn line by line across the page (left line, right line, ...),
    as some producers draw them, above a three-column table drawn column by column."""
    left = ["Tidal power stations use the rise", "and fall of the sea to turn", "turbines built into a barrage", "across an estuary mouth."]
    right = ["Wave farms instead float on the", "surface and capture the motion", "of passing swells with hinged", "segments and hydraulic pumps."]
    ops = []
    for i, (l, r) in enumerate(zip(left, right)):
        ops.append(text_at(72, 720 - 13 * i, l))
        ops.append(text_at(320, 720 - 13 * i, r))
    table = [["Site", "Kind", "Output"], ["Rance", "tidal", "240 MW"], ["Mutriku", "wave", "0.3 MW"]]
    for col, x in enumerate([72, 240, 400]):
        for row, cells in enumerate(table):
            ops.append(text_at(x, 600 - 14 * row, cells[col]))
    return b"\n".join(ops)


def docx(paragraphs, table):
    """A minimal Word document: paragraphs as (style or None, text), and one table."""
    import io
    import zipfile
    from xml.sax.saxutils import escape

    W = 'xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"'
    body = []
    for style, text in paragraphs:
        ppr = f'<w:pPr><w:pStyle w:val="{style}"/></w:pPr>' if style else ""
        body.append(f'<w:p>{ppr}<w:r><w:t xml:space="preserve">{escape(text)}</w:t></w:r></w:p>')
    rows = "".join(
        "<w:tr>" + "".join(f"<w:tc><w:p><w:r><w:t>{escape(c)}</w:t></w:r></w:p></w:tc>" for c in row) + "</w:tr>"
        for row in table
    )
    body.append(f"<w:tbl>{rows}</w:tbl>")
    document = f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?><w:document {W}><w:body>{"".join(body)}</w:body></w:document>'
    styles = (
        f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?><w:styles {W}>'
        '<w:style w:type="paragraph" w:styleId="Title"><w:name w:val="Title"/></w:style>'
        '<w:style w:type="paragraph" w:styleId="Heading1"><w:name w:val="heading 1"/></w:style>'
        '<w:style w:type="paragraph" w:styleId="Heading2"><w:name w:val="heading 2"/></w:style>'
        "</w:styles>"
    )
    content_types = (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
        '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
        '<Default Extension="xml" ContentType="application/xml"/>'
        '<Override PartName="/word/document.xml" ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/>'
        "</Types>"
    )
    rels = (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
        '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="word/document.xml"/>'
        "</Relationships>"
    )
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in [("[Content_Types].xml", content_types), ("_rels/.rels", rels),
                           ("word/document.xml", document), ("word/styles.xml", styles)]:
            info = zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(info, data)
    return buf.getvalue()


def cjk_font(add):
    """Japanese as Mac OS X and many Japanese producers set it: a CID font of Adobe-Japan1,
    not embedded, with the Identity encoding and no ToUnicode map."""
    descriptor = add(b"<< /Type /FontDescriptor /FontName /Ryumin-Light /Flags 4 "
                     b"/FontBBox [0 -120 1000 880] /ItalicAngle 0 /Ascent 880 /Descent -120 "
                     b"/CapHeight 700 /StemV 80 >>")
    cid = add(b"<< /Type /Font /Subtype /CIDFontType0 /BaseFont /Ryumin-Light /DW 1000 "
              b"/CIDSystemInfo << /Registry (Adobe) /Ordering (Japan1) /Supplement 2 >> "
              b"/FontDescriptor %d 0 R >>" % descriptor)
    return add(b"<< /Type /Font /Subtype /Type0 /BaseFont /Ryumin-Light /Encoding /Identity-H "
               b"/DescendantFonts [%d 0 R] >>" % cid)


# Adobe-Japan1 CIDs of 日本語の文書 (poppler-data's cidToUnicode/Adobe-Japan1).
CJK_PAGE = b"BT /F1 12 Tf 72 700 Td <0CD40E8A07A003770E08097B> Tj ET"

# Words placed by moving to each, as TeX places them: lopdf's own extraction, the fallback
# when pdf-extract cannot parse a file, runs them together.
WORDS_BY_MOVES = b"BT /F1 12 Tf 72 700 Td (Tidal) Tj 33 0 Td (power) Tj 37 0 Td (stations) Tj ET"


def main():
    OUT.mkdir(exist_ok=True)
    (OUT / "handbook.pdf").write_bytes(pdf(HANDBOOK, compress=True))
    (OUT / "scanned.pdf").write_bytes(pdf([[], []]))
    good = pdf(HANDBOOK[:1])
    # A PDF cut off in its first object: the header is right, nothing after it is readable.
    (OUT / "corrupt.pdf").write_bytes(good[:60] + b"\x00garbage\xff" * 8)
    (OUT / "photo.png").write_bytes(png_1x1())
    # Needs a password to open: must fail clearly.
    (OUT / "encrypted.pdf").write_bytes(pdf(HANDBOOK[:1], user_password="secret"))
    # Encrypted with an empty user password (owner restrictions only): must be read.
    (OUT / "restricted.pdf").write_bytes(pdf(HANDBOOK[1:2], compress=True, user_password=""))
    (OUT / "ligatures.pdf").write_bytes(pdf(None, raw_pages=[ligature_page()], to_unicode=LIGATURE_CMAP))
    (OUT / "two-column.pdf").write_bytes(pdf(None, raw_pages=[two_column_page()]))
    (OUT / "landscape.pdf").write_bytes(pdf(None, raw_pages=[landscape_page()], rotate=[90]))
    (OUT / "diagram.pdf").write_bytes(pdf(None, raw_pages=[diagram_page()]))
    (OUT / "columns-by-row.pdf").write_bytes(pdf(None, raw_pages=[row_table_page()]))
    faq = [typeset_page(p) for p in FAQ_PAGES]
    (OUT / "faq-typeset.pdf").write_bytes(pdf(None, raw_pages=faq))
    (OUT / "faq-outline.pdf").write_bytes(pdf(None, raw_pages=faq, outline=[
        ("Moorings", 1), ("Where can visitors moor?", 1), ("When is the harbour office open?", 1),
        ("Fuel", 2), ("Where is the fuel pontoon?", 2)]))
    (OUT / "cjk-identity.pdf").write_bytes(pdf(None, raw_pages=[CJK_PAGE], font_objects=cjk_font))
    (OUT / "no-xref.pdf").write_bytes(pdf(None, raw_pages=[WORDS_BY_MOVES], xref=False))
    # A chapter's last page holding nothing but the running header: not a scan.
    header_only = FAQ_PAGES + [[(9, "Harbour FAQ 5")]]
    (OUT / "header-only-page.pdf").write_bytes(pdf(None, raw_pages=[typeset_page(p) for p in header_only]))
    (OUT / "report.docx").write_bytes(docx(
        [
            ("Title", "Harbour Operations Report"),
            (None, "This report summarises the harbour's operations for the spring season."),
            ("Heading1", "Dredging"),
            (None, "The main channel was dredged to a depth of twelve metres in April."),
            ("Heading2", "Costs & Contractors"),
            (None, "Dredging cost 1.2 million euros and was carried out by Van Oord."),
            ("Heading1", "Berth Occupancy"),
            (None, "Berth occupancy averaged 78 percent across the season."),
        ],
        [["Berth", "Vessels", "Occupancy"], ["North quay", "41", "82%"], ["South quay", "33", "74%"]],
    ))
    # Text in legacy encodings: UTF-16 with a byte-order mark, and Latin-1 (no marker).
    utf16 = "Ærøskøbing ferry timetable\nThe ferry to Svendborg leaves at 06:45 and 09:30.\nÅrhus connections: see café board.\n"
    (OUT / "timetable-utf16.txt").write_bytes(b"\xff\xfe" + utf16.encode("utf-16-le"))
    latin1 = "Crème brûlée recipe\nHeat the crème fraîche gently, whisk the yolks with sugar, and bake au bain-marie.\nCaramelise the top with a torch just before serving; the façade should crack.\n"
    (OUT / "recipe-latin1.txt").write_bytes(latin1.encode("latin-1"))


if __name__ == "__main__":
    main()
