"""Plain-text tables in kubectl's layout: upper-case headers, left-aligned columns, three spaces apart."""

from __future__ import annotations

from collections.abc import Sequence

GAP = "   "


def render_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """The table as text: the header line, then one line per row, without trailing spaces."""
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows, strict=True)]
    lines = [_line(headers, widths)] + [_line(row, widths) for row in rows]
    return "\n".join(lines)


def _line(cells: Sequence[str], widths: Sequence[int]) -> str:
    return GAP.join(str(cell).ljust(width) for cell, width in zip(cells, widths, strict=True)).rstrip()
