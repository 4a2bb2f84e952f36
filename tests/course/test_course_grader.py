"""The self-study grader (python -m minivae.course grade NOTEBOOK): it runs a notebook in a kernel
of this environment, survives exceptions and endless loops, and scores the graded cells.

A solution notebook must score full marks and its generated exercise zero: the first shows the
tests accept the reference, the second that they do not pass without the learner's work. The
grader cannot be fooled by the ways found so far: a custom exception handler that hides the
errors, a loop that swallows the interrupt, deleted or edited test cells, edited points; bad
files and options exit 2 with one line, a dead kernel names its cell.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
pytest.importorskip("nbclient")

from minivae.course.__main__ import main as cli  # noqa: E402
from minivae.course.generate import make_exercise, notebook_text  # noqa: E402
from minivae.course.grader import (  # noqa: E402
    GradeReport,
    NotebookError,
    find_solution,
    grade_notebook,
)
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


def fixture_solution() -> nbformat.NotebookNode:
    return nbformat.read(FIXTURE, as_version=4)


def fixture_release() -> nbformat.NotebookNode:
    return make_exercise(fixture_solution())


def cell_of(nb, grade_id: str):
    (cell,) = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id]
    return cell


@pytest.fixture
def course(tmp_path) -> Path:
    """A course folder as in the repository: solutions/99_fixture.ipynb beside exercises/."""
    (tmp_path / "solutions").mkdir()
    (tmp_path / "exercises").mkdir()
    shutil.copy(FIXTURE, tmp_path / "solutions" / FIXTURE.name)
    return tmp_path


def write_exercise(course: Path, nb) -> Path:
    path = course / "exercises" / FIXTURE.name
    path.write_text(notebook_text(nb))
    return path


# ----------------------------------------------------------------------------- scoring


def test_fixture_solution_scores_full_marks(capsys):
    assert grade_main(str(FIXTURE), timeout=60, quiet=True) == 0
    out = capsys.readouterr().out
    assert re.search(r"test_linear_forward +2 / 2 +PASS", out)
    assert re.search(r"total +3 / 3 ", out)
    assert "note:" not in out  # the solution is its own reference: nothing restored


def test_fixture_exercise_scores_zero(course):
    path = write_exercise(course, fixture_release())
    assert find_solution(path) == course / "solutions" / FIXTURE.name
    report = grade_notebook(path, timeout=60)
    assert report.solution == course / "solutions" / FIXTURE.name
    assert (report.earned, report.points) == (0, 3), describe(report)
    assert not report.all_passed
    results = report.by_id()
    assert results["test_linear_forward"].message == (
        "not done yet: replace `raise NotImplementedError()` with your code"
    )
    assert results["test_mse"].message.startswith("not done yet: finish mse above first")
    assert not [n for n in report.notes if "changed" in n], report.notes
    assert grade_main(str(path), timeout=60, quiet=True) == 1


def test_a_wrong_answer_shows_the_learners_message(tmp_path):
    nb = fixture_solution()
    cell = cell_of(nb, "linear_forward")
    cell.source = cell.source.replace("out = x @ W + b", "out = x @ W")
    path = tmp_path / "wrong.ipynb"
    nbformat.write(nb, path)
    report = grade_notebook(path, timeout=60, solution=FIXTURE)
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
            # Catches the interrupt once and then finishes with status ok: it still ran past
            # the limit, so it fails; the kernel answered, so the run goes on.
            nbformat.v4.new_code_cell(
                "try:\n    while True:\n        pass\nexcept KeyboardInterrupt:\n    pass",
                metadata=meta("test_caught_once", grade=True, points=1),
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
    report = grade_notebook(path, timeout=2, find=False)
    assert time.monotonic() - start < 60
    results = report.by_id()
    assert not results["test_loop"].passed
    assert results["test_loop"].message.startswith("timed out: ran longer than 2 s"), describe(
        report
    )
    assert results["test_after"].passed and results["test_after"].earned == 2
    assert not results["test_caught_once"].passed
    assert results["test_caught_once"].message.startswith("timed out: ran longer than 2 s")
    assert results["test_wrong"].message == "x should be 2"
    assert report.errors == ["setup: ValueError: boom"]
    assert (report.earned, report.points) == (2, 5)
    assert report.stopped is None
    assert any("no solution notebook named loop.ipynb" in n for n in report.notes)

    # The command line: the table on stdout, exit status 1 (not everything passed).
    proc = subprocess.run(
        [sys.executable, "-m", "minivae.course", "grade", str(path), "--timeout", "2"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert re.search(r"test_loop +0 / 1 +FAIL +timed out", proc.stdout)
    assert re.search(r"total +2 / 5 ", proc.stdout)
    assert "[2/6] test_loop" in proc.stderr  # progress


# ----------------------------------------------------------------------------- ways of faking


def test_a_custom_exception_handler_does_not_pass_the_tests(course):
    """set_custom_exc swallows every traceback, so no cell has an error output; the kernel's
    execute reply still says status "error" for each failing cell."""
    nb = fixture_release()
    hide = "get_ipython().set_custom_exc((BaseException,), lambda *args, **kwargs: None)"
    nb.cells.insert(2, nbformat.v4.new_code_cell(hide))
    path = write_exercise(course, nb)

    # The fake is real: run as before (outputs only), no graded cell shows an error.
    from nbclient import NotebookClient

    executed = nbformat.from_dict(nb)
    NotebookClient(executed, timeout=60, allow_errors=True, kernel_name="python3").execute(
        cwd=str(path.parent)
    )
    graded = [c for c in executed.cells if c.metadata.get("nbgrader", {}).get("grade")]
    assert graded and not [o for c in graded for o in c.outputs if o.output_type == "error"]

    report = grade_notebook(path, timeout=60)
    assert (report.earned, report.points) == (0, 3), describe(report)
    assert report.by_id()["test_linear_forward"].message.startswith("not done yet")


def test_a_loop_that_swallows_the_interrupt_stops_the_run_and_scores_nothing_after(course):
    nb = fixture_solution()  # every answer right, then one cell that ignores Ctrl-C
    swallow = (
        "import time\n"
        "while True:\n"
        "    try:\n"
        "        time.sleep(0.05)\n"
        "    except KeyboardInterrupt:\n"
        "        pass"
    )
    nb.cells.insert(4, nbformat.v4.new_code_cell(swallow))  # after linear_forward's answer
    path = write_exercise(course, nb)
    start = time.monotonic()
    report = grade_notebook(path, timeout=2, interrupt_grace=2)
    assert time.monotonic() - start < 30
    results = report.by_id()
    assert (report.earned, report.points) == (0, 3), describe(report)
    assert report.stopped is not None and "did not stop when interrupted" in report.stopped
    assert "KeyboardInterrupt" in report.stopped
    assert results["test_linear_forward"].message == "not run: the run stopped at cell 4"
    assert results["test_mse"].message == "not run: the run stopped at cell 4"
    assert "run stopped: cell 4 ran longer than 2 s" in report.table()

    # In a graded cell: that cell fails with the reason, the rest are not run.
    nb = fixture_solution()
    test = cell_of(nb, "test_linear_forward")
    test.source = swallow
    path = course / "graded_loop.ipynb"
    path.write_text(notebook_text(nb))
    report = grade_notebook(path, timeout=2, interrupt_grace=2, find=False)
    results = report.by_id()
    assert results["test_linear_forward"].message.startswith(
        "timed out: ran longer than 2 s and did not stop when interrupted"
    ), describe(report)
    assert results["test_mse"].message == "not run: the run stopped at test_linear_forward"
    assert report.earned == 0


def test_deleted_graded_cells_count_as_failed(course, capsys):
    # The first exercise solved, the second not, and its failing test cell deleted.
    nb = fixture_solution()
    cell_of(nb, "mse").source = cell_of(fixture_release(), "mse").source
    nb.cells.remove(cell_of(nb, "test_mse"))
    path = write_exercise(course, nb)
    assert grade_main(str(path), timeout=60, quiet=True) == 1
    out = capsys.readouterr().out
    assert re.search(r"test_linear_forward +2 / 2 +PASS", out)
    assert re.search(r"test_mse +0 / 1 +FAIL +missing: this graded cell is not in your", out)
    assert re.search(r"total +2 / 3 ", out)

    # Every graded cell deleted: all failed (exit 1), not "no graded cells" (exit 2).
    nb = fixture_release()
    nb.cells = [c for c in nb.cells if not c.metadata["nbgrader"]["grade"]]
    path = write_exercise(course, nb)
    assert grade_main(str(path), timeout=60, quiet=True) == 1
    assert re.search(r"total +0 / 3 ", capsys.readouterr().out)

    # Turned into markdown, or its grade flag removed: the same.
    nb = fixture_release()
    cell_of(nb, "test_linear_forward").metadata["nbgrader"]["grade"] = False
    md = cell_of(nb, "test_mse")
    nb.cells[nb.cells.index(md)] = nbformat.v4.new_markdown_cell(md.source, metadata=md.metadata)
    report = grade_notebook(write_exercise(course, nb), timeout=60)
    assert (report.earned, report.points) == (0, 3), describe(report)
    assert report.by_id()["test_mse"].message.startswith("missing")


def test_edited_test_cells_and_points_are_graded_as_released(course):
    nb = fixture_release()
    test = cell_of(nb, "test_linear_forward")
    test.source = "pass  # a test that cannot fail"
    test.metadata["nbgrader"]["points"] = 100
    cell_of(nb, "setup").source = "import numpy as np\nfeedback = None"
    path = write_exercise(course, nb)
    report = grade_notebook(path, timeout=60)
    assert (report.earned, report.points) == (0, 3), describe(report)
    assert report.by_id()["test_linear_forward"].message.startswith("not done yet")
    assert "test_linear_forward: this locked cell was changed; it ran as released instead" in (
        report.notes
    )
    assert "setup: this locked cell was changed; it ran as released instead" in report.notes

    # A graded cell the learner added is run but not scored.
    nb = fixture_solution()
    nb.cells.append(nbformat.v4.new_code_cell("pass", metadata=meta("bonus", grade=True, points=9)))
    report = grade_notebook(write_exercise(course, nb), timeout=60)
    assert (report.earned, report.points) == (3, 3), describe(report)
    assert any(n.startswith("bonus: not a graded cell of 99_fixture.ipynb") for n in report.notes)


def test_a_dead_kernel_names_the_cell_and_says_what_is_known(course):
    nb = fixture_solution()
    cell_of(nb, "linear_forward").source = "import os\nos._exit(3)"
    report = grade_notebook(write_exercise(course, nb), timeout=60)
    results = report.by_id()
    assert report.stopped == (
        "the Python kernel died in linear_forward: it exited with status 3 "
        "(os._exit or a crash in compiled code?)"
    ), describe(report)
    assert "memory" not in report.table()
    assert results["test_linear_forward"].message == "not run: the run stopped at linear_forward"
    assert (report.earned, report.points) == (0, 3)

    nb = fixture_solution()
    cell_of(nb, "mse").source = "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)"
    report = grade_notebook(write_exercise(course, nb), timeout=60)
    results = report.by_id()
    assert results["test_linear_forward"].passed
    assert report.stopped.startswith("the Python kernel died in mse: it was killed by SIGKILL"), (
        describe(report)
    )
    assert "out-of-memory killer" in report.stopped  # SIGKILL: say who sends it
    assert results["test_mse"].message == "not run: the run stopped at mse"
    assert report.earned == 2


# ----------------------------------------------------------------------------- bad input


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = cli(["grade", *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.parametrize(
    "name, content, expected",
    [
        ("text.ipynb", "not json", "is not a Jupyter notebook: not valid JSON"),
        ("empty.ipynb", "", "is not a Jupyter notebook: the file is empty"),
        ("list.ipynb", "[1, 2]", "is not a Jupyter notebook: JSON without a list of cells"),
        ("dict.ipynb", '{"a": 1}', "is not a Jupyter notebook: JSON without a list of cells"),
        (
            "cells.ipynb",
            '{"cells": [{"source": "1"}], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}',
            "is not a valid Jupyter notebook",
        ),
        ("binary.ipynb", b"\xff\xfe\x00", "is not a Jupyter notebook: not UTF-8 text"),
        ("missing.ipynb", None, "error: no notebook at "),
        ("folder.ipynb", "folder", "is a folder, not a notebook file"),
    ],
)
def test_bad_files_exit_2_with_one_line(tmp_path, capsys, name, content, expected):
    path = tmp_path / name
    if content == "folder":
        path.mkdir()
    elif isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content)
    code, out, err = run_cli(capsys, str(path))
    assert code == 2
    assert out == ""
    assert err.count("\n") == 1 and expected in err, err
    with pytest.raises(NotebookError):
        grade_notebook(path)


@pytest.mark.parametrize("timeout", ["0", "-5", "abc", "nan", "inf", ""])
def test_bad_timeouts_exit_2_with_one_line(capsys, timeout):
    code, out, err = run_cli(capsys, str(FIXTURE), "--timeout", timeout)
    assert code == 2 and out == ""
    assert err == (
        "python -m minivae.course grade: error: argument --timeout: must be a positive number "
        f"of seconds, got {timeout!r} (see --help)\n"
    )


def test_bad_options_and_the_real_command_line(tmp_path, capsys):
    with pytest.raises(NotebookError, match="timeout must be a positive number of seconds"):
        grade_notebook(FIXTURE, timeout=0)
    code, _, err = run_cli(capsys, str(FIXTURE), "--solution", str(tmp_path / "nope.ipynb"))
    assert code == 2 and err.startswith("error: no solution notebook at ")
    plain = tmp_path / "plain.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("1 + 1")]), plain)
    code, out, err = run_cli(capsys, str(plain), "--quiet")
    assert code == 2 and out == "" and err.count("\n") == 1 and "has no graded test cells" in err

    # The real command: a bad file is exit 2 and one line, no traceback.
    bad = tmp_path / "bad.ipynb"
    bad.write_text("{ nope")
    proc = subprocess.run(
        [sys.executable, "-m", "minivae.course", "grade", str(bad)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr, proc.stderr


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
    assert report.solution == solution
    assert report.results, f"{exercise.name} has no graded cells"
    passing = [r.grade_id for r in report.results if r.passed]
    assert report.earned == 0 and not passing, (
        f"graded cells that pass without the learner's work: {passing}" + describe(report)
    )
    assert not [n for n in report.notes if "changed" in n], describe(report)
