"""The course website: built from the committed notebooks, nothing secret in it, and every page
loads cleanly in a real headless browser (Chromium, when installed: CI installs it)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

site = pytest.importorskip("minivae.course.site")
pytest.importorskip("pdoc")
pytest.importorskip("nbconvert")

ROOT = Path(__file__).resolve().parents[2]
NO_BROWSER = "Chromium and chromedriver not installed (apt-get install chromium chromium-driver)"
NO_NPM = shutil.which("npm") is None and not (ROOT / ".site-cache").exists()


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> site.SiteReport:
    if NO_NPM:
        pytest.skip("MathJax comes from the npm registry and npm is not installed")
    return site.build(tmp_path_factory.mktemp("site") / "_site")


@pytest.mark.slow
def test_every_chapter_has_its_pages_and_downloads(built: site.SiteReport) -> None:
    out = built.out
    chapters = site.chapters(ROOT)
    assert len(chapters) >= 7
    for chapter in chapters:
        if chapter.lecture is not None:
            page = out / "lectures" / f"{chapter.stem}.html"
            assert page.exists(), f"no lecture page for {chapter.stem}"
            assert (out / "notebooks" / "lectures" / chapter.lecture.name).exists()
            text = page.read_text(encoding="utf-8")
            assert "<img" in text, f"{page.name}: the lecture's committed figures are missing"
            assert 'href="../index.html"' in text, f"{page.name}: no link home"
        if chapter.exercises is not None:
            assert (out / "exercises" / f"{chapter.stem}.html").exists()
    assert (out / "index.html").exists() and (out / "api" / "minivae.html").exists()
    assert (out / "guides" / "instructors.html").exists()
    assert (out / "assets" / "mathjax" / site.MATHJAX_FILE).exists()
    for page in built.pages:  # offline: nothing is loaded from another host
        text = page.read_text(encoding="utf-8")
        assert "<script src=\"http" not in text and "cdnjs" not in text, page


@pytest.mark.slow
def test_no_solution_or_hidden_test_anywhere_in_the_site(built: site.SiteReport) -> None:
    assert site.check_no_solutions(built.out, ROOT) == []


def test_the_grep_finds_planted_solution_code(tmp_path: Path) -> None:
    secret = site.hidden_material(ROOT)
    assert secret, "the solutions have solution code the site must not show"
    (tmp_path / "exercises").mkdir()
    (tmp_path / "exercises" / "00_x.html").write_text(f"<pre>{secret[0]}</pre>", "utf-8")
    (tmp_path / "lectures").mkdir()
    (tmp_path / "lectures" / "00_x.html").write_text("### BEGIN HIDDEN TESTS", "utf-8")
    problems = site.check_no_solutions(tmp_path, ROOT)
    assert any("shows solution or hidden-test code" in p for p in problems), problems
    assert any("BEGIN HIDDEN TESTS" in p for p in problems), problems


@pytest.mark.slow
@pytest.mark.skipif(site.find_browser() is None, reason=NO_BROWSER)
def test_every_page_loads_cleanly_in_chromium(built: site.SiteReport, tmp_path: Path) -> None:
    shots = tmp_path / "shots"
    assert site.check(built.out, shots, ROOT) == []
    taken = sorted(p.stem for p in shots.glob("*.png"))
    assert taken == [c.stem for c in site.chapters(ROOT)], "one screenshot per chapter"


@pytest.mark.skipif(site.find_browser() is None, reason=NO_BROWSER)
def test_the_browser_check_fails_on_a_broken_page(tmp_path: Path) -> None:
    out = tmp_path / "_site"
    out.mkdir()
    (out / "index.html").write_text(
        '<!DOCTYPE html><html><head><link rel="icon" href="data:,"></head><body>'
        '<img src="missing.png"><a href="nowhere.html">x</a><a href="#no-such-anchor">y</a>'
        "<script>console.error('planted error')</script></body></html>",
        encoding="utf-8",
    )
    problems = "\n".join(site.check(out, tmp_path / "shots", tmp_path))
    assert "image did not load: missing.png" in problems
    assert "link to a missing page: nowhere.html" in problems
    assert "link to a missing anchor: #no-such-anchor" in problems
    assert "planted error" in problems
