"""A minimal PDF 1.4 writer: pages of text lines in the standard Helvetica fonts.

Enough for a report without a dependency: a catalog, a page tree, one content stream per page,
a cross-reference table with exact byte offsets and an info dictionary.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

PAGE_WIDTH = 595  # A4 in points
PAGE_HEIGHT = 842
MARGIN = 56
TITLE_SIZE = 16
TEXT_SIZE = 10
LEADING = 14
LINES_PER_PAGE = (PAGE_HEIGHT - 2 * MARGIN - 2 * LEADING) // LEADING


def render_pdf(title: str, lines: Sequence[str], *, created: datetime | None = None) -> bytes:
    """A PDF document: ``title`` in bold on every page, then ``lines`` in a monospaced font."""
    moment = created or datetime.now(UTC)
    pages = [list(lines[i : i + LINES_PER_PAGE]) for i in range(0, len(lines), LINES_PER_PAGE)]
    pages = pages or [[]]

    # Object numbers: 1 catalog, 2 page tree, 3-4 fonts, 5 info, then a (page, content) pair
    # per page.
    first_page = 6
    page_ids = [first_page + 2 * i for i in range(len(pages))]
    objects: dict[int, bytes] = {
        1: b"<< /Type /Catalog /Pages 2 0 R >>",
        2: b"<< /Type /Pages /Kids ["
        + b" ".join(b"%d 0 R" % pid for pid in page_ids)
        + b"] /Count %d >>" % len(pages),
        3: b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica-Bold "
        b"/Encoding /WinAnsiEncoding >>",
        4: b"<< /Type /Font /Subtype /Type1 /BaseFont /Courier /Encoding /WinAnsiEncoding >>",
        5: b"<< /Title " + _string(title) + b" /Producer (backgroundjobs bgj_examples)"
        b" /CreationDate " + _string(moment.strftime("D:%Y%m%d%H%M%SZ")) + b" >>",
    }
    for number, (page_id, page_lines) in enumerate(zip(page_ids, pages, strict=True), start=1):
        content = _page_content(title, page_lines, number, len(pages))
        objects[page_id] = b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 %d %d] " % (
            PAGE_WIDTH,
            PAGE_HEIGHT,
        ) + b"/Resources << /Font << /F1 3 0 R /F2 4 0 R >> >> /Contents %d 0 R >>" % (page_id + 1)
        objects[page_id + 1] = (
            b"<< /Length %d >>\nstream\n" % len(content) + content + b"\nendstream"
        )

    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets: dict[int, int] = {}
    for number in sorted(objects):
        offsets[number] = len(out)
        out += b"%d 0 obj\n" % number + objects[number] + b"\nendobj\n"
    xref_at = len(out)
    count = max(objects) + 1
    out += b"xref\n0 %d\n" % count
    out += b"0000000000 65535 f \n"
    for number in range(1, count):
        out += b"%010d 00000 n \n" % offsets[number]
    out += b"trailer\n<< /Size %d /Root 1 0 R /Info 5 0 R >>\n" % count
    out += b"startxref\n%d\n%%%%EOF\n" % xref_at
    return bytes(out)


def _page_content(title: str, lines: Sequence[str], number: int, total: int) -> bytes:
    top = PAGE_HEIGHT - MARGIN
    parts = [
        b"BT /F1 %d Tf %d %d Td " % (TITLE_SIZE, MARGIN, top) + _string(title) + b" Tj ET",
        b"BT /F2 8 Tf %d %d Td " % (MARGIN, MARGIN // 2)
        + _string(f"page {number} of {total}")
        + b" Tj ET",
        b"BT /F2 %d Tf %d TL %d %d Td" % (TEXT_SIZE, LEADING, MARGIN, top - 2 * LEADING),
    ]
    for line in lines:
        parts.append(_string(line) + b" Tj T*")
    parts.append(b"ET")
    return b"\n".join(parts)


def _string(text: str) -> bytes:
    """A PDF literal string in WinAnsi (cp1252); characters outside it become '?'."""
    raw = text.encode("cp1252", errors="replace")
    escaped = raw.replace(b"\\", b"\\\\").replace(b"(", b"\\(").replace(b")", b"\\)")
    escaped = escaped.replace(b"\r", b"\\r").replace(b"\n", b"\\n")
    return b"(" + escaped + b")"
