"""The solution notebooks work with nbgrader as they are: an instructor's course in a temporary
folder generates the student version, then autogrades a submission equal to the solution (full
marks, hidden tests included) and the untouched release (zero).

Runs ``python -m nbgrader`` in subprocesses with this environment's bin/ first on PATH (nbgrader
calls ``alembic``). Skipped where nbgrader is not installed (it needs Python >= 3.11).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("nbgrader")
nbformat = pytest.importorskip("nbformat")

from minivae.course.generate import make_exercise  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
FIXTURE = ROOT / "tests" / "course_fixture" / "solutions" / "99_fixture.ipynb"
SOLUTIONS = sorted((ROOT / "solutions").glob("*.ipynb"))

pytestmark = pytest.mark.slow

CONFIG = """\
c = get_config()
c.CourseDirectory.root = {root!r}
c.CourseDirectory.course_id = "minivae"
# Training cells take up to a minute or so on 2 CPU cores; leave room.
c.ExecutePreprocessor.timeout = 600
"""


def nbgrader(root: Path, *args: str, timeout: float = 1800) -> str:
    env = dict(os.environ)
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    env.setdefault("MPLBACKEND", "Agg")
    proc = subprocess.run(
        [sys.executable, "-m", "nbgrader", *args],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"nbgrader {' '.join(args)} failed:\n{output[-6000:]}"
    assert "[ERROR]" not in output and "| ERROR]" not in output, output[-6000:]
    return output


def build_course(root: Path, assignment: str, notebooks: list[Path]) -> None:
    root.mkdir(parents=True)
    (root / "nbgrader_config.py").write_text(CONFIG.format(root=str(root)))
    source = root / "source" / assignment
    source.mkdir(parents=True)
    for path in notebooks:
        shutil.copy(path, source / path.name)


def submit(root: Path, assignment: str, student: str, *, solved: bool) -> None:
    """A student's submission: the release, with the solution cells filled in if ``solved``."""
    folder = root / "submitted" / student / assignment
    folder.mkdir(parents=True)
    for path in sorted((root / "release" / assignment).glob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        if solved:
            source = nbformat.read(root / "source" / assignment / path.name, as_version=4)
            answers = {
                c.metadata["nbgrader"]["grade_id"]: c.source
                for c in source.cells
                if c.metadata.get("nbgrader", {}).get("solution")
            }
            for cell in nb.cells:
                meta = cell.metadata.get("nbgrader", {})
                if meta.get("solution"):
                    cell.source = answers[meta["grade_id"]]
        nbformat.write(nb, folder / path.name)


def scores(root: Path, assignment: str, student: str) -> dict[str, dict[str, tuple[float, float]]]:
    """notebook -> grade_id -> (score, max_score), read from nbgrader's gradebook."""
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{root / 'gradebook.db'}") as gb:
        submission = gb.find_submission(assignment, student)
        return {
            nb.name: {g.name: (g.score, g.max_score) for g in nb.grades}
            for nb in submission.notebooks
        }


def run_course(tmp_path: Path, notebooks: list[Path]) -> tuple[Path, dict[str, float]]:
    root = tmp_path / "course"
    assignment = "problem_sets"
    build_course(root, assignment, notebooks)
    timings = {}
    t0 = time.monotonic()
    nbgrader(root, "generate_assignment", assignment, "--force")
    timings["generate_assignment"] = time.monotonic() - t0
    submit(root, assignment, "solved", solved=True)
    submit(root, assignment, "untouched", solved=False)
    t0 = time.monotonic()
    nbgrader(root, "autograde", assignment, "--force")
    timings["autograde"] = time.monotonic() - t0
    print(f"\nnbgrader timings for {len(notebooks)} notebook(s): {timings}")
    return root, timings


def check_course(root: Path, notebooks: list[Path]) -> None:
    assignment = "problem_sets"
    for path in notebooks:
        # nbgrader's student version has the same cells as ours (python -m minivae.course exercises)
        release = nbformat.read(root / "release" / assignment / path.name, as_version=4)
        ours = make_exercise(nbformat.read(path, as_version=4))
        assert [c.source for c in release.cells] == [c.source for c in ours.cells], path.name
        # autograding put the hidden tests back into the submitted notebooks
        graded = nbformat.read(root / "autograded" / "solved" / assignment / path.name, 4)
        hidden = [c for c in nbformat.read(path, 4).cells if "### BEGIN HIDDEN TESTS" in c.source]
        graded_sources = [c.source for c in graded.cells]
        for cell in hidden:
            assert cell.source in graded_sources, f"{path.name}: hidden tests not run"
    solved = scores(root, assignment, "solved")
    untouched = scores(root, assignment, "untouched")
    for path in notebooks:
        name = path.stem
        assert solved[name], f"{path.name}: no graded cells in the gradebook"
        lost = {k: v for k, v in solved[name].items() if v[0] != v[1]}
        assert not lost, f"{path.name}: the solution loses points in {lost}"
        earned = {k: v for k, v in untouched[name].items() if v[0] != 0}
        assert not earned, f"{path.name}: the untouched release earns points in {earned}"


def test_nbgrader_fixture(tmp_path):
    root, _ = run_course(tmp_path, [FIXTURE])
    check_course(root, [FIXTURE])
    assert scores(root, "problem_sets", "solved")["99_fixture"] == {
        "test_linear_forward": (2.0, 2.0),
        "test_mse": (1.0, 1.0),
    }


@pytest.mark.skipif(not SOLUTIONS, reason="solutions/ has no notebooks yet")
def test_nbgrader_real_solutions(tmp_path):
    root, _ = run_course(tmp_path, SOLUTIONS)
    check_course(root, SOLUTIONS)
