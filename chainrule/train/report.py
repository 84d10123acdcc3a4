"""``report.html``: one self-contained page per run (or comparison): the headline numbers, every picture, then
the tables.

Plots are embedded as base64 ``data:`` URIs, so the file can be mailed or archived alone, and each is wrapped in
a link to its PNG in the run folder (relative path) for full-size viewing next to the run. Every piece of text
(titles, captions, class names in the tables) is HTML-escaped.
"""

from __future__ import annotations

import base64
import datetime as _dt
import html
import os
from pathlib import Path
from typing import Any, Mapping, Sequence

_STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2em auto; max-width: 1100px;
       color: #222; padding: 0 1em; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; } h2 { font-size: 1.25em; margin-top: 1.6em; }
.sub { color: #666; margin-top: 0; }
table { border-collapse: collapse; margin: 0.6em 0; font-size: 0.95em; }
th, td { border: 1px solid #ccc; padding: 0.3em 0.7em; text-align: left; }
th { background: #f3f3f3; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
.plots { display: grid; grid-template-columns: repeat(auto-fill, minmax(480px, 1fr)); gap: 1.2em;
         align-items: start; }
figure { margin: 0; } figure img { width: 100%; height: auto; border: 1px solid #ddd; }
figure.wide { grid-column: 1 / -1; } figure.wide img { width: auto; max-width: 100%; }
figcaption { color: #555; font-size: 0.9em; }
.headline { display: flex; flex-wrap: wrap; gap: 0.8em; margin: 1em 0 1.4em; }
.headline div { background: #f5f7fa; border: 1px solid #dde3ea; border-radius: 6px; padding: 0.45em 0.9em; }
.headline b { display: block; font-size: 1.35em; font-variant-numeric: tabular-nums; }
.headline span { color: #666; font-size: 0.85em; }
"""

# Pictures wider than they are tall (image grids, templates) span the whole page width.
_WIDE = ("examples", "weights", "comparison")


def _fmt(v: Any) -> str:
    if isinstance(v, bool) or v is None:
        return "" if v is None else str(v)
    if isinstance(v, float):
        if v != v:
            return "nan"
        if abs(v) >= 1e5 or (v != 0 and abs(v) < 1e-3):
            return f"{v:.3g}"
        return f"{v:.4g}"
    return str(v)


def html_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str] | None = None) -> str:
    """A table with one row per dict (columns: the given ones, else the union of keys in order)."""
    if not rows:
        return "<p>(none)</p>"
    if columns is None:
        columns = list(dict.fromkeys(k for r in rows for k in r))
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in columns)
    body = []
    for r in rows:
        cells = []
        for c in columns:
            v = r.get(c)
            cls = ' class="num"' if isinstance(v, (int, float)) and not isinstance(v, bool) else ""
            cells.append(f"<td{cls}>{html.escape(_fmt(v))}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def key_value_table(items: Mapping[str, Any]) -> str:
    rows = "".join(f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(_fmt(v))}</td></tr>"
                   for k, v in items.items() if v is not None)
    return f"<table>{rows}</table>"


def _figure_html(path: Path, caption: str, base: Path) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    try:
        href = os.path.relpath(path, base).replace(os.sep, "/")
    except ValueError:  # another drive (Windows)
        href = path.as_uri()
    cls = ' class="wide"' if path.stem in _WIDE else ""
    return (f'<figure{cls}><a href="{html.escape(href)}"><img src="data:image/png;base64,{data}" '
            f'alt="{html.escape(caption)}"></a><figcaption>{html.escape(caption)}</figcaption></figure>')


def headline_html(items: Sequence[tuple[str, str]]) -> str:
    """A strip of big numbers with small labels: [("validation accuracy", "97.2%"), ...]."""
    cells = "".join(f"<div><b>{html.escape(v)}</b><span>{html.escape(k)}</span></div>" for k, v in items)
    return f'<div class="headline">{cells}</div>' if cells else ""


def write_report(path: str | os.PathLike, title: str, *, subtitle: str = "",
                 sections: Sequence[tuple[str, str]] = (),
                 plots: Sequence[tuple[str, str | os.PathLike]] = (),
                 headline: Sequence[tuple[str, str]] = ()) -> Path:
    """Write ``report.html``: the ``headline`` numbers ((label, value) pairs), then ``plots`` ((caption, PNG path)
    pairs, embedded in that order; missing PNGs are skipped), then ``sections`` ((heading, HTML body) pairs: use
    ``html_table`` / ``key_value_table``). Written atomically."""
    path = Path(path)
    base = path.parent
    parts = [
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        f'<p class="sub">{html.escape(subtitle)}{" · " if subtitle else ""}'
        f"generated {_dt.datetime.now().isoformat(timespec='seconds')} by chainrule</p>",
        headline_html(headline),
    ]
    figures = [_figure_html(Path(p), caption, base) for caption, p in plots if Path(p).is_file()]
    if figures:
        parts.append('<div class="plots">' + "".join(figures) + "</div>")
    for heading, body in sections:
        parts.append(f"<h2>{html.escape(heading)}</h2>{body}")
    parts.append("</body></html>")
    from chainrule.utils.atomic import atomic_write_text

    atomic_write_text(path, "\n".join(parts) + "\n")
    return path
