"""The course as a static website, built from the committed notebooks without running them.

    python -m minivae.course.site build [--out _site]          # about half a minute
    python -m minivae.course.site check [--out _site]          # a headless Chromium visits it
    python -m minivae.course.site build --check                # both

What is built (every page links home, to its neighbours and to its notebook for download):

- ``index.html``: the README's introduction and table of chapters;
- ``lectures/NN_name.html``: every lecture with its committed figures and rendered maths;
- ``exercises/NN_name.html``: every problem set as students get it (``exercises/``: stubs and
  visible tests, never the solutions or the hidden tests);
- ``guides/*.html``: the instructor and student guides and the other Markdown pages the README
  links to; ``api/``: the library's reference, generated from its docstrings by pdoc;
- ``notebooks/``: the .ipynb files, for download; ``assets/``: MathJax and the site's CSS.

Offline: the maths renderer is MathJax 3 from the npm registry (installed once into
``.site-cache/``, copied into the site), and no page loads anything from another host, so the
site renders without a network.
:func:`check_no_solutions` greps the built files for solution and hidden-test code; :func:`check`
loads every page in headless Chromium (Selenium, Debian's ``chromium`` and ``chromium-driver``)
and fails on console errors, images that did not load, maths that did not render and internal
links that do not resolve, and saves one screenshot per chapter.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import html
import http.server
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
#: MathJax 3 from the npm registry: one file, SVG output, no web fonts to fetch.
MATHJAX_VERSION = "3.2.2"
MATHJAX_FILE = "tex-svg-full.js"
#: MathJax 3 reads its configuration from window.MathJax, set before the script loads.
_MATHJAX_CONFIG = (
    '<link rel="icon" href="data:,">'  # no favicon to fetch
    "<script>window.MathJax = {tex: {inlineMath: [['$', '$'], ['\\\\(', '\\\\)']], "
    "displayMath: [['$$', '$$'], ['\\\\[', '\\\\]']], processEscapes: true, "
    "tags: 'ams'}, svg: {fontCache: 'global'}};</script>"
)
#: Markdown files the site renders as pages, besides the README (paths relative to the root).
GUIDES = ("docs/instructors.md", "docs/students.md", "benchmarks/README.md")
_NB_NAME = re.compile(r"^(\d\d)_\w+\.ipynb$")

_CSS = """
body { margin: 0; font-family: system-ui, -apple-system, "Segoe UI", sans-serif; }
nav.site { position: sticky; top: 0; z-index: 10; background: #1f3b57; color: #fff;
  padding: 0.5em 1em; display: flex; flex-wrap: wrap; gap: 0.4em 1.2em; font-size: 15px; }
nav.site a { color: #fff; text-decoration: none; }
nav.site a:hover { text-decoration: underline; }
nav.site .title { font-weight: 600; }
main.page { max-width: 52em; margin: 1.5em auto; padding: 0 1em; line-height: 1.55; }
main.page table { border-collapse: collapse; margin: 1em 0; }
main.page td, main.page th { border: 1px solid #ccc; padding: 0.3em 0.6em; vertical-align: top; }
main.page pre { background: #f4f4f4; padding: 0.6em; overflow-x: auto; }
main.page code { background: #f4f4f4; padding: 0 0.2em; }
"""


@dataclass
class Chapter:
    """One chapter: its number and name, and the notebooks the site has of it."""

    number: str
    name: str
    lecture: Path | None
    exercises: Path | None

    @property
    def stem(self) -> str:
        return f"{self.number}_{self.name}"

    @property
    def title(self) -> str:
        return f"{self.number} · {self.name.replace('_', ' ')}"


@dataclass
class SiteReport:
    """What :func:`build` wrote."""

    out: Path
    pages: list[Path] = field(default_factory=list)
    seconds: float = 0.0


def chapters(root: Path = ROOT) -> list[Chapter]:
    """The chapters, from the lecture and exercise notebooks that exist, in order."""
    found: dict[str, Chapter] = {}
    for folder in ("notebooks", "exercises"):
        for path in sorted((root / folder).glob("*.ipynb")):
            if not _NB_NAME.match(path.name):
                continue
            number, name = path.stem.split("_", 1)
            chapter = found.setdefault(path.stem, Chapter(number, name, None, None))
            if folder == "notebooks":
                chapter.lecture = path
            else:
                chapter.exercises = path
    return [found[key] for key in sorted(found)]


# ---------------------------------------------------------------------------------------------
# Building
# ---------------------------------------------------------------------------------------------


def _nav(prefix: str, items: list[tuple[str, str]]) -> str:
    links = "".join(f'<a href="{prefix}{href}">{html.escape(text)}</a>' for text, href in items)
    return f'<nav class="site"><a class="title" href="{prefix}index.html">minivae</a>{links}</nav>'


def _chapter_nav(chapter: Chapter, all_chapters: list[Chapter], kind: str) -> str:
    index = all_chapters.index(chapter)
    items: list[tuple[str, str]] = []
    if index > 0:
        before = all_chapters[index - 1]
        items.append((f"← {before.title}", _page_of(before, kind)))
    if chapter.lecture is not None:
        items.append(("lecture", f"lectures/{chapter.stem}.html"))
    if chapter.exercises is not None:
        items.append(("exercises", f"exercises/{chapter.stem}.html"))
    items.append(("download .ipynb", f"notebooks/{kind}/{chapter.stem}.ipynb"))
    if index + 1 < len(all_chapters):
        after = all_chapters[index + 1]
        items.append((f"{after.title} →", _page_of(after, kind)))
    items.append(("API", "api/minivae.html"))
    return _nav("../", items)


def _page_of(chapter: Chapter, kind: str) -> str:
    if kind == "exercises" and chapter.exercises is not None:
        return f"exercises/{chapter.stem}.html"
    if chapter.lecture is not None:
        return f"lectures/{chapter.stem}.html"
    return f"exercises/{chapter.stem}.html"


@functools.lru_cache(maxsize=1)
def _exporter_class() -> type:
    from nbconvert import HTMLExporter

    return HTMLExporter


def _notebook_page(path: Path, nav: str, title: str) -> str:
    """A notebook as one HTML page (nbconvert's lab template), not executed, fully offline."""
    import nbformat

    nb = nbformat.read(path, as_version=4)
    # Saved widget state would pull the widget renderer from a CDN; the committed lectures
    # carry static figures of their widgets instead.
    nb.metadata.pop("widgets", None)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = [
                out
                for out in cell.outputs
                if "application/vnd.jupyter.widget-view+json" not in out.get("data", {})
                or len(out.get("data", {})) > 1
            ]
            for out in cell.outputs:
                out.get("data", {}).pop("application/vnd.jupyter.widget-view+json", None)
    exporter = _exporter_class()(
        template_name="lab", mathjax_url=f"../assets/mathjax/{MATHJAX_FILE}"
    )
    body, _ = exporter.from_notebook_node(nb, resources={"metadata": {"name": title}})
    # nbconvert's template loads require.js from a CDN for widget JavaScript: not needed here
    body = re.sub(r'<script src="https://[^"]*require[^"]*"></script>', "", body)
    # and a module that would import mermaid from a CDN if a page had diagrams (none has)
    body = re.sub(r'<script type="module">(?:(?!</script>).)*?mermaid.*?</script>', "", body,
                  flags=re.S)
    body = body.replace("</head>", '<link rel="stylesheet" href="../assets/site.css">\n</head>', 1)
    body = body.replace("<head>", "<head>" + _MATHJAX_CONFIG, 1)
    return re.sub(r"(<body[^>]*>)", lambda m: m.group(1) + nav, body, count=1)


def _markdown_page(markdown_text: str, nav: str, title: str, prefix: str) -> str:
    import mistune

    render = mistune.create_markdown(plugins=["table", "strikethrough", "url"])
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1.0">'
        f"<title>{html.escape(title)}</title>"
        f'<link rel="stylesheet" href="{prefix}assets/site.css">{_MATHJAX_CONFIG}'
        f'<script src="{prefix}assets/mathjax/{MATHJAX_FILE}"></script>'
        f'</head><body>{nav}<main class="page">{render(markdown_text)}</main></body></html>\n'
    )


def _rewrite_links(markdown_text: str, source: Path, root: Path, prefix: str) -> str:
    """Point the Markdown's repository links at the site's pages; unlink what the site lacks."""

    def target(match: re.Match) -> str:
        text, href = match.group(1), match.group(2)
        if re.match(r"^[a-z]+:", href) or href.startswith("#"):
            return match.group(0)  # an external link or an anchor of this page
        path_part, _, anchor = href.partition("#")
        resolved = (source.parent / path_part).resolve()
        try:
            relative = resolved.relative_to(root).as_posix()
        except ValueError:
            return text
        anchor = f"#{anchor}" if anchor else ""
        if relative == "README.md":
            return f"[{text}]({prefix}index.html{anchor})"
        if relative.startswith(("notebooks/", "exercises/")) and relative.endswith(".ipynb"):
            folder = "lectures" if relative.startswith("notebooks/") else "exercises"
            return f"[{text}]({prefix}{folder}/{Path(relative).stem}.html{anchor})"
        if relative in GUIDES:
            return f"[{text}]({prefix}guides/{_guide_name(relative)}.html{anchor})"
        return text  # a source file or folder: named, not linked (the site has no copy)

    return re.sub(r"(?<!!)\[([^\]]+)\]\(([^)\s]+)\)", target, markdown_text)


def _guide_name(relative: str) -> str:
    path = Path(relative)
    return path.stem if path.parent.name == "docs" else f"{path.parent.name}-{path.stem}"


def _landing_markdown(root: Path) -> str:
    """The README's introduction and its section on the course (the table of chapters)."""
    readme = (root / "README.md").read_text(encoding="utf-8")
    intro = readme.split("\n## ", 1)[0]
    course = re.search(r"\n## The course\n(.*?)(?=\n## )", readme, re.S)
    guides = "\n".join(
        f"- [{_guide_name(g).replace('-', ' ')}]({g})" for g in GUIDES if (root / g).exists()
    )
    parts = [intro, "## The course\n" + (course.group(1) if course else "")]
    parts.append("## Guides and reference\n\n" + guides + "\n- [the library's API](API_LINK)\n")
    return "\n\n".join(parts)


def mathjax_dir(root: Path = ROOT) -> Path:
    """MathJax's es5 folder: ``$MINIVAE_MATHJAX_DIR``, else ``.site-cache/`` in the repository,
    installed there from the npm registry on first use (``npm install mathjax@3``)."""
    if os.environ.get("MINIVAE_MATHJAX_DIR"):
        folder = Path(os.environ["MINIVAE_MATHJAX_DIR"])
    else:
        cache = root / ".site-cache"
        folder = cache / "node_modules" / "mathjax" / "es5"
        if not (folder / MATHJAX_FILE).exists():
            npm = shutil.which("npm")
            if npm is None:
                raise RuntimeError(
                    "the site's maths renderer is MathJax from the npm registry, and npm is not "
                    f"installed: install Node.js/npm, or set MINIVAE_MATHJAX_DIR to a MathJax "
                    f"{MATHJAX_VERSION} es5 folder"
                )
            subprocess.run(
                [
                    npm,
                    "install",
                    "--no-audit",
                    "--no-fund",
                    "--silent",
                    "--prefix",
                    str(cache),
                    f"mathjax@{MATHJAX_VERSION}",
                ],
                check=True,
            )
    if not (folder / MATHJAX_FILE).exists():
        raise RuntimeError(f"{folder} has no {MATHJAX_FILE} (expected MathJax {MATHJAX_VERSION})")
    return folder


def _copy_mathjax(out: Path, root: Path) -> None:
    target = out / "assets" / "mathjax"
    target.mkdir(parents=True)
    shutil.copyfile(mathjax_dir(root) / MATHJAX_FILE, target / MATHJAX_FILE)


def _api_reference(out: Path) -> None:
    """The library's reference from its docstrings (pdoc), written to ``out/api``."""
    import pdoc
    import pdoc.render

    # Docstrings quote their equations in indented blocks: pdoc shows them as preformatted
    # text, exactly as written, so no maths renderer is needed there.
    pdoc.render.configure(
        docformat="restructuredtext",
        math=False,
        search=True,
        show_source=True,
        footer_text="minivae",
        favicon="data:,",
    )
    import pkgutil

    import minivae

    # every module of the library by name (pdoc alone follows only what __all__ names); the
    # course machinery and the command-line entry are not library API
    names = ["minivae"] + [
        info.name
        for info in pkgutil.walk_packages(minivae.__path__, "minivae.")
        if not info.name.startswith(("minivae.course", "minivae.__main__"))
    ]
    with warnings.catch_warnings():
        # pdoc adds the submodules of each subpackage itself and then warns that the list
        # names them again: harmless, one page each
        warnings.filterwarnings("ignore", message="The module specification")
        pdoc.pdoc(*names, output_directory=out / "api")
    (out / "api" / "index.html").write_text(
        '<!DOCTYPE html><html><head><meta charset="utf-8"><link rel="icon" href="data:,">'
        '<meta http-equiv="refresh" content="0; url=./minivae.html"></head></html>\n',
        encoding="utf-8",
    )


def build(out: str | os.PathLike = "_site", root: Path = ROOT, api: bool = True) -> SiteReport:
    """Write the site to ``out`` (replaced if it exists) and return what was written."""
    start = time.perf_counter()
    out = Path(out).resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    # built beside the target and renamed at the end: a failed build leaves the old site intact
    tmp = Path(tempfile.mkdtemp(prefix=".site-", dir=out.parent))
    try:
        (tmp / "assets").mkdir()
        (tmp / "assets" / "site.css").write_text(_CSS, encoding="utf-8")
        _copy_mathjax(tmp, root)
        all_chapters = chapters(root)
        for chapter in all_chapters:
            for kind, path in (("lectures", chapter.lecture), ("exercises", chapter.exercises)):
                if path is None:
                    continue
                page = tmp / kind / f"{chapter.stem}.html"
                page.parent.mkdir(exist_ok=True)
                nav = _chapter_nav(chapter, all_chapters, kind)
                label = "lecture" if kind == "lectures" else "problem set"
                page.write_text(
                    _notebook_page(path, nav, f"{chapter.title} — {label}"), encoding="utf-8"
                )
                download = tmp / "notebooks" / kind / path.name
                download.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(path, download)
        home_nav = _nav(
            "",
            [(c.title, _page_of(c, "lectures")) for c in all_chapters]
            + [("API", "api/minivae.html")],
        )
        landing = _rewrite_links(_landing_markdown(root), root / "README.md", root, "")
        landing = landing.replace("](API_LINK)", "](api/minivae.html)")
        (tmp / "index.html").write_text(
            _markdown_page(landing, home_nav, "minivae", ""), encoding="utf-8"
        )
        guide_nav = _nav(
            "../",
            [(c.title, _page_of(c, "lectures")) for c in all_chapters]
            + [("API", "api/minivae.html")],
        )
        (tmp / "guides").mkdir()
        for guide in GUIDES:
            source = root / guide
            if source.exists():
                text = _rewrite_links(source.read_text(encoding="utf-8"), source, root, "../")
                page = tmp / "guides" / f"{_guide_name(guide)}.html"
                page.write_text(
                    _markdown_page(text, guide_nav, source.stem, "../"), encoding="utf-8"
                )
        if api:
            _api_reference(tmp)
        if out.exists():
            shutil.rmtree(out)
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    pages = sorted(p for p in out.rglob("*.html") if "assets" not in p.relative_to(out).parts)
    return SiteReport(out, pages, time.perf_counter() - start)


# ---------------------------------------------------------------------------------------------
# Checking
# ---------------------------------------------------------------------------------------------


def hidden_material(root: Path = ROOT) -> list[str]:
    """Lines of the solutions that the site must never show: solution and hidden-test code."""
    import nbformat

    hidden: set[str] = set()
    shown: set[str] = set()  # lines that also stand outside those regions (a visible test...)
    for path in sorted((root / "solutions").glob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        for cell in nb.cells:
            inside = None
            for line in cell.source.splitlines():
                stripped = line.strip()
                if stripped in ("### BEGIN SOLUTION", "### BEGIN HIDDEN TESTS"):
                    inside = stripped
                    continue
                if stripped in ("### END SOLUTION", "### END HIDDEN TESTS"):
                    inside = None
                    continue
                (hidden if inside else shown).add(stripped)
    # what students get anyway: the problem sets and the lectures (a hidden test may import what
    # a lecture imports too)
    public = [*(root / "exercises").glob("*.ipynb"), *(root / "notebooks").glob("*.ipynb")]
    for path in sorted(public):
        for cell in nbformat.read(path, as_version=4).cells:
            shown.update(line.strip() for line in cell.source.splitlines())
    # long, specific lines only: short ones ("return x") also occur in stubs and lectures
    lines = {line for line in hidden - shown if len(line) >= 40 and not line.startswith("#")}
    return sorted(lines)


def check_no_solutions(out: str | os.PathLike, root: Path = ROOT) -> list[str]:
    """Problems found by grepping the built site for solution and hidden-test material."""
    problems = []
    markers = ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "END HIDDEN TESTS")
    secret = hidden_material(root)
    for path in sorted(Path(out).rglob("*")):
        if not path.is_file() or path.suffix not in (".html", ".ipynb", ".js", ".json", ".md"):
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        text_unescaped = html.unescape(text)
        # the guides and the landing page name the markers to explain them; no notebook may
        in_notebook = path.suffix == ".ipynb" or path.parent.name in ("lectures", "exercises")
        for marker in markers if in_notebook else ():
            if marker in text:
                problems.append(f"{path}: contains {marker!r}")
        if path.suffix in (".html", ".ipynb"):
            for line in secret:
                if line in text_unescaped or json.dumps(line)[1:-1] in text:
                    problems.append(f"{path}: shows solution or hidden-test code: {line[:70]!r}")
    return problems


@contextlib.contextmanager
def _serve(folder: Path) -> Iterator[str]:
    """Serve ``folder`` on 127.0.0.1 (a free port) for the duration of the block."""
    handler = functools.partial(_QuietHandler, directory=str(folder))
    server = _QuietServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


class _QuietServer(http.server.ThreadingHTTPServer):
    def handle_error(self, request: object, client_address: object) -> None:
        pass  # a browser that drops a connection early is not a site problem


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base's name
        pass


def find_browser() -> tuple[str, str] | None:
    """(chromium, chromedriver) paths, or None when either is not installed."""
    browser = next(
        (
            shutil.which(n)
            for n in ("chromium", "chromium-browser", "google-chrome")
            if shutil.which(n)
        ),
        None,
    )
    driver = shutil.which("chromedriver")
    return (browser, driver) if browser and driver else None


_PAGE_PROBE = """
const done = arguments[arguments.length - 1];
function report() {
  const images = [...document.images].filter(i => !(i.complete && i.naturalWidth > 0))
    .map(i => i.getAttribute('src').slice(0, 80));
  const mathErrors = document.querySelectorAll('mjx-merror, [data-mjx-error]').length;
  const texLeft = [...document.querySelectorAll('.jp-RenderedMarkdown, main.page')]
    .map(e => e.innerText).join('\\n').match(/\\$\\$[^$]+\\$\\$|\\\\\\([^)]*\\\\\\)/g) || [];
  const rendered = document.querySelectorAll('mjx-container').length;
  const links = [...document.querySelectorAll('a[href]')].map(a => a.getAttribute('href'));
  done({images, mathErrors, texLeft: texLeft.slice(0, 3), rendered, links,
        title: document.title});
}
if (window.MathJax && MathJax.startup && MathJax.startup.promise) {
  MathJax.startup.promise.then(report, report);
} else { report(); }
"""


def check(
    out: str | os.PathLike = "_site",
    screenshots: str | os.PathLike | None = None,
    root: Path = ROOT,
) -> list[str]:
    """Visit every page of the built site in headless Chromium; return the problems found.

    A page fails on a console error, an image that did not load, a maths element that did not
    render (or TeX left as text), or an internal link to a file or anchor that is not there.
    One screenshot per chapter (its lecture, else its problem set) goes to ``screenshots``.
    """
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    out = Path(out)
    found = find_browser()
    if found is None:
        raise RuntimeError(
            "the browser check needs Chromium and its driver: apt-get install chromium "
            "chromium-driver (Debian)"
        )
    browser, driver_path = found
    problems = check_no_solutions(out, root)
    shots = Path(screenshots) if screenshots is not None else out.parent / "site-screenshots"
    shots.mkdir(parents=True, exist_ok=True)
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--window-size=1280,1600",
        "--disable-dev-shm-usage",
    ):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    pages = sorted(p for p in out.rglob("*.html") if "assets" not in p.relative_to(out).parts)
    chapter_pages = {}
    for chapter in chapters(root):
        page = out / _page_of(chapter, "lectures")
        chapter_pages[page] = chapter.stem
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    driver.set_script_timeout(120)
    try:
        with _serve(out) as base:
            for page in pages:
                relative = page.relative_to(out).as_posix()
                driver.get(base + relative)
                result = driver.execute_async_script(_PAGE_PROBE)
                for entry in driver.get_log("browser"):
                    if entry.get("level") == "SEVERE":
                        problems.append(f"{relative}: console error: {entry['message'][:160]}")
                for src in result["images"]:
                    problems.append(f"{relative}: image did not load: {src}")
                if result["mathErrors"]:
                    problems.append(f"{relative}: {result['mathErrors']} maths error(s)")
                for tex in result["texLeft"]:
                    problems.append(f"{relative}: maths left unrendered: {tex[:60]!r}")
                # a redirect (pdoc's api/index.html) lands on another page: resolve from there
                landed = driver.current_url.split("#")[0][len(base) :] or "index.html"
                problems.extend(_link_problems(out, out / landed, result["links"], relative))
                if page in chapter_pages:
                    driver.save_screenshot(str(shots / f"{chapter_pages[page]}.png"))
    finally:
        driver.quit()
    return problems


def _link_problems(out: Path, page: Path, links: list[str], relative: str) -> list[str]:
    """Internal links of ``page`` (visited as ``relative``) whose file or anchor is missing."""
    problems = []
    for href in links:
        if re.match(r"^[a-z]+:", href) or href.startswith("//"):
            continue  # external (http:, mailto:): not ours to resolve offline
        path_part, _, anchor = href.partition("#")
        target = (page.parent / path_part).resolve() if path_part else page
        if path_part.endswith("/"):
            target = target / "index.html"
        if not target.exists():
            problems.append(f"{relative}: link to a missing page: {href}")
            continue
        if anchor and target.suffix == ".html":
            text = target.read_text(encoding="utf-8", errors="replace")
            if f'id="{anchor}"' not in text and f'name="{anchor}"' not in text:
                problems.append(f"{relative}: link to a missing anchor: {href}")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m minivae.course.site", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("command", choices=("build", "check"))
    parser.add_argument("--out", default="_site", help="the site's folder (default _site)")
    parser.add_argument("--check", action="store_true", help="after build, run the check too")
    parser.add_argument(
        "--screenshots",
        default=None,
        help="folder for the chapter screenshots (default: site-screenshots beside the site)",
    )
    args = parser.parse_args(argv)
    if args.command == "build":
        report = build(args.out)
        print(f"built {len(report.pages)} pages into {report.out} in {report.seconds:.1f} s")
        if not args.check:
            problems = check_no_solutions(report.out)
            for problem in problems:
                print(problem, file=sys.stderr)
            return 1 if problems else 0
    problems = check(args.out, args.screenshots)
    for problem in problems:
        print(problem, file=sys.stderr)
    pages = sum(
        1 for p in Path(args.out).rglob("*.html") if "assets" not in p.relative_to(args.out).parts
    )
    print(
        f"checked {pages} pages in headless Chromium: "
        + ("no problems" if not problems else f"{len(problems)} problem(s)")
    )
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
