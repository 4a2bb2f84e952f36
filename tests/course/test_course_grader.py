"""The self-study grader (python -m minivae.course grade NOTEBOOK): it runs a notebook in a kernel
of this environment, survives exceptions and endless loops, and scores the graded cells.

A solution notebook must score full marks and its generated exercise zero: the first shows the
tests accept the reference, the second that they do not pass without the learner's work.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
pytest.importorskip("nbclient")

from minivae.course.generate import make_exercise, notebook_text  # noqa: E402
from minivae.course.grader import GradeReport, grade_notebook  # noqa: E402
from minivae.course.grader import main as grade_main  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
FIXTURE = ROOT / "tests" / "course_fixture" / "solutions" / "99_fixture.ipynb"
SOLUTIONS = sorted((ROOT / "solutions").glob("*.ipynb"))
TIMEOUT = 300  # seconds per cell for the real notebooks (2 shared CPU cores)

pytestmark = pytest.mark.slow


def meta(grade_id: str, *, grade: bool = False, solution: bool = False, points: int | None = None):
    nbgrader = {
        "grade": grade,
        "solution": solution,
        "locked": not solution,
        "grade_id": grade_id,
        "schema_version": 3,
    }
    if points is not None:
        nbgrader["points"] = points
    return {"nbgrader": nbgrader}


def describe(report: GradeReport) -> str:
    return "\n" + report.table()


@pytest.fixture(scope="module")
def fixture_exercise(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("exercises") / FIXTURE.name
    path.write_text(notebook_text(make_exercise(nbformat.read(FIXTURE, as_version=4))))
    return path


def test_fixture_solution_scores_full_marks(capsys):
    assert grade_main(str(FIXTURE), timeout=60, quiet=True) == 0
    out = capsys.readouterr().out
    assert re.search(r"test_linear_forward +2 / 2 +PASS", out)
    assert re.search(r"total +3 / 3 ", out)


def test_fixture_exercise_scores_zero(fixture_exercise):
    report = grade_notebook(fixture_exercise, timeout=60)
    assert (report.earned, report.points) == (0, 3), describe(report)
    assert not report.all_passed
    results = report.by_id()
    assert results["test_linear_forward"].message == (
        "not done yet: replace `raise NotImplementedError()` with your code"
    )
    assert results["test_mse"].message.startswith("not done yet: finish mse above first")
    assert grade_main(str(fixture_exercise), timeout=60, quiet=True) == 1


def test_a_wrong_answer_shows_the_learners_message(tmp_path):
    nb = nbformat.read(FIXTURE, as_version=4)
    for cell in nb.cells:
        if cell.metadata["nbgrader"]["grade_id"] == "linear_forward":
            cell.source = cell.source.replace("out = x @ W + b", "out = x @ W")
    path = tmp_path / "wrong.ipynb"
    nbformat.write(nb, path)
    report = grade_notebook(path, timeout=60)
    results = report.by_id()
    assert results["test_linear_forward"].message == "out: the bias b is missing", describe(report)
    assert results["test_mse"].passed
    assert (report.earned, report.points) == (1, 3)


def test_an_endless_loop_is_cut_by_the_timeout_and_the_run_goes_on(tmp_path):
    nb = nbformat.v4.new_notebook(
        cells=[
            nbformat.v4.new_code_cell("x = 1", metadata=meta("answer", solution=True)),
            nbformat.v4.new_code_cell(
                "while True:\n    pass", metadata=meta("test_loop", grade=True, points=1)
            ),
            nbformat.v4.new_code_cell(
                "assert x == 1", metadata=meta("test_after", grade=True, points=2)
            ),
            nbformat.v4.new_code_cell("raise ValueError('boom')", metadata=meta("setup")),
            nbformat.v4.new_code_cell(
                "assert x == 2, 'x should be 2'", metadata=meta("test_wrong", grade=True, points=1)
            ),
        ]
    )
    path = tmp_path / "loop.ipynb"
    nbformat.write(nb, path)
    start = time.monotonic()
    report = grade_notebook(path, timeout=3)
    assert time.monotonic() - start < 60
    results = report.by_id()
    assert not results["test_loop"].passed
    assert results["test_loop"].message.startswith("timed out: ran longer than 3 s"), describe(
        report
    )
    assert results["test_after"].passed and results["test_after"].earned == 2
    assert results["test_wrong"].message == "x should be 2"
    assert report.errors == ["setup: ValueError: boom"]
    assert (report.earned, report.points) == (2, 4)

    # The command line: the table on stdout, exit status 1 (not everything passed).
    proc = subprocess.run(
        [sys.executable, "-m", "minivae.course", "grade", str(path), "--timeout", "3"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert re.search(r"test_loop +0 / 1 +FAIL +timed out", proc.stdout)
    assert re.search(r"total +2 / 4 ", proc.stdout)
    assert "[2/5] test_loop" in proc.stderr  # progress


def test_missing_notebook_and_no_graded_cells(tmp_path, capsys):
    assert (
        subprocess.run(
            [sys.executable, "-m", "minivae.course", "grade", str(tmp_path / "nope.ipynb")],
            capture_output=True,
            timeout=60,
        ).returncode
        == 2
    )
    path = tmp_path / "plain.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("1 + 1")]), path)
    assert grade_main(str(path), timeout=30, quiet=True) == 2
    assert "no graded test cells" in capsys.readouterr().out


# ----------------------------------------------------------------------------- real chapters


@pytest.mark.parametrize("solution", SOLUTIONS, ids=[p.stem for p in SOLUTIONS])
def test_real_solution_scores_full_marks(solution):
    report = grade_notebook(solution, timeout=TIMEOUT)
    assert report.results, f"{solution.name} has no graded cells"
    assert report.all_passed and report.earned == report.points, describe(report)


@pytest.mark.parametrize("solution", SOLUTIONS, ids=[p.stem for p in SOLUTIONS])
def test_real_exercise_scores_zero(solution):
    exercise = ROOT / "exercises" / solution.name
    if not exercise.exists():
        pytest.skip(
            f"exercises/{solution.name} not generated yet (python -m minivae.course exercises)"
        )
    report = grade_notebook(exercise, timeout=TIMEOUT)
    assert report.results, f"{exercise.name} has no graded cells"
    passing = [r.grade_id for r in report.results if r.passed]
    assert report.earned == 0 and not passing, (
        f"graded cells that pass without the learner's work: {passing}" + describe(report)
    )
