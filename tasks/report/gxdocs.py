"""The night's GX Data Docs: links for the report, and pages that read offline.

GX 1.24 writes its site under ``<home>/gx/gx/uncommitted/data_docs/local_site`` (one validation page per
suite and ingest run, in ``validations/<suite>/<run_id>__<batch>/<time>/``), and every page pulls
Bootstrap, bootstrap-table, jQuery, Font Awesome and Vega from CDNs. GX ships only its own small
stylesheets and images, not those libraries, so offline the pages lose their layout and the status
icons (a Font Awesome glyph) vanish. :func:`make_offline` rewrites each page once: the CDN
``<link>``/``<script>`` tags go (no network request, no wait on an unreachable host), GX's remote
logo (its URL carries the data context id) becomes the copy GX ships in the site, and a local
stylesheet (``static/gx_offline.css`` here, copied into the site's ``static/styles``) takes their
place. What needed their scripts (table sorting, the "failed only" filter, collapsing) is lost;
every section is shown open instead.
"""

from __future__ import annotations

import glob
import os
import re
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

SITE = Path("gx") / "uncommitted" / "data_docs" / "local_site"  # inside the GX project root (home.gx)
OFFLINE_CSS = Path(__file__).parent / "static" / "gx_offline.css"
SITE_CSS = Path("static") / "styles" / "clickrec_offline.css"
MARKER = "<!-- clickrec: offline -->"
_EXTERNAL = re.compile(
    r"""<link\b[^>]*\bhref=["']https?://[^>]*>|<script\b[^>]*\bsrc=["']https?://[^>]*>\s*</script>""",
    re.IGNORECASE,
)
_REMOTE_IMG = re.compile(r"""(<img\b[^>]*\bsrc=)["']https?://[^"']*["']""", re.IGNORECASE)
_REMOTE_CSS_URL = re.compile(r"""url\(\s*["']?https?://[^)]*\)""", re.IGNORECASE)
LOCAL_LOGO = Path("static") / "images" / "logo-long.png"  # shipped by GX into every site


@dataclass(frozen=True)
class DocsPage:
    """One Data Docs page: what the report's link says and where the file is."""

    label: str
    path: Path
    run_id: str | None = None
    suite: str | None = None


def site_dir(gx_dir: Path) -> Path:
    return gx_dir / SITE


def night_pages(gx_dir: Path, run_ids: Sequence[str]) -> tuple[list[DocsPage], DocsPage | None]:
    """The validation pages of ``run_ids`` (newest build of each suite and batch), and the site index."""
    site = site_dir(gx_dir)
    if not site.is_dir():
        return [], None
    pages = []
    for run_id in run_ids:
        # One GX run per ingest run (named by the run); runs before it validated per file (named
        # run__file), and their sites still hold those pages.
        name = glob.escape(run_id)
        runs = sorted([*site.glob(f"validations/*/{name}/*/*.html"), *site.glob(f"validations/*/{name}__*/*/*.html")])
        latest: dict[tuple[str, str], Path] = {}
        for p in runs:  # sorted: a later build time replaces an earlier one
            suite, run_dir = p.relative_to(site).parts[1:3]
            latest[(suite, run_dir)] = p
        for (suite, run_dir), p in sorted(latest.items()):
            batch = run_dir[len(run_id) + 2:]
            label = f"{suite} · {batch}" if batch else suite
            pages.append(DocsPage(label=label, path=p, run_id=run_id, suite=suite))
    index = site / "index.html"
    return pages, DocsPage("Data Docs index", index) if index.is_file() else None


def offline_html(html: str, css_href: str, logo_href: str) -> str:
    """The page without its CDN tags and remote logos (GX's logo URL carries the data context id), with
    the local stylesheet; unchanged when already done."""
    if MARKER in html:
        return html
    html = _EXTERNAL.sub("", html)
    html = _REMOTE_IMG.sub(lambda m: f'{m.group(1)}"{logo_href}"', html)
    html = _REMOTE_CSS_URL.sub("none", html)  # the dark-mode logo background
    tag = f'{MARKER}<link rel="stylesheet" href="{css_href}">'
    head = re.search(r"</head>", html, flags=re.IGNORECASE)
    return html[: head.start()] + tag + html[head.start():] if head else tag + html


def _write_atomic(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(prefix=".offline-", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def make_offline(gx_dir: Path, pages: Iterable[Path] | None = None) -> int:
    """Make ``pages`` (default: every page of the site) read offline; returns how many were rewritten.

    GX rebuilds the index and the expectation suites' pages on every validation, so those are always
    passed too. Idempotent: a page already rewritten keeps its bytes."""
    site = site_dir(gx_dir)
    if not site.is_dir():
        return 0
    css = site / SITE_CSS
    css.parent.mkdir(parents=True, exist_ok=True)
    wanted = OFFLINE_CSS.read_text(encoding="utf-8")
    if not css.is_file() or css.read_text(encoding="utf-8") != wanted:
        _write_atomic(css, wanted)
    todo = set(site.rglob("*.html")) if pages is None else {*pages, *site.glob("expectations/*.html")}
    todo |= {site / "index.html"} if (site / "index.html").is_file() else set()
    rewritten = 0
    for page in sorted(todo):
        html = page.read_text(encoding="utf-8")
        rel = {p: Path(os.path.relpath(site / p, page.parent)).as_posix() for p in (SITE_CSS, LOCAL_LOGO)}
        new = offline_html(html, rel[SITE_CSS], rel[LOCAL_LOGO])
        if new != html:
            _write_atomic(page, new)
            rewritten += 1
    return rewritten
