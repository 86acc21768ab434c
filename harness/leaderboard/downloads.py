"""CSV and JSON downloads of the site's tables, written at build time under ``downloads/``.

The CSV holds each cell as the page shows it; the JSON holds the values at full precision
(``null`` where the page shows a dash), one object per row keyed by the column labels.
"""

from __future__ import annotations

import csv
import io
import json

from harness.leaderboard.tables import Table

DOWNLOADS = "downloads"


def _label(table: Table, index: int) -> str:
    """A column's download label: its group and label (``retrieval / Task``) when grouped."""
    column = table.columns[index]
    return f"{column.group} / {column.label}" if column.group else column.label


def csv_text(table: Table) -> str:
    """The table as shown, as CSV (a header line, then a line per row)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([_label(table, i) for i in range(len(table.columns))])
    for row in table.rows:
        writer.writerow([cell.text for cell in row.cells])
    return buffer.getvalue()


def json_text(table: Table) -> str:
    """The table's values at full precision, as a JSON list of row objects."""
    labels = [_label(table, i) for i in range(len(table.columns))]
    rows = [
        dict(zip(labels, (cell.value for cell in row.cells), strict=True)) for row in table.rows
    ]
    return json.dumps(rows, indent=1, ensure_ascii=False, allow_nan=False) + "\n"


def download_files(table: Table) -> dict[str, tuple[str, str]]:
    """``{kind: (relative path, content)}`` of the table's CSV and JSON downloads."""
    stem = f"{DOWNLOADS}/{table.name}"
    return {"CSV": (f"{stem}.csv", csv_text(table)), "JSON": (f"{stem}.json", json_text(table))}
