"""The flow of docs/instructors.md, run with real nbgrader: the course folder, the
``nbgrader_config.py`` printed in that document (read from it, with the course path filled in),
``generate_assignment``, the submissions in ``submitted/<student>/<assignment>/``, ``autograde``,
``export`` and ``generate_feedback``.

Asserted: the release is our generated exercise cell for cell; a submission equal to the solution
gets full marks (the hidden tests put back and passed); the untouched release gets 0; the
checksum warnings are exactly the hidden-test cells, one per student (what the document says);
and no feedback HTML holds a line of hidden-test code — neither in the cells nor in the
traceback of a student who fails only a hidden test.

Runs ``python -m nbgrader`` in subprocesses with this environment's bin/ first on PATH (nbgrader
calls ``alembic``). Skipped where nbgrader is not installed.
"""

from __future__ import annotations

import csv
import html
import os
import re
import shutil
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

pytest.importorskip("nbgrader")
nbformat = pytest.importorskip("nbformat")

from minivae.course.generate import BEGIN_HIDDEN, END_HIDDEN, make_exercise  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "instructors.md"
FIXTURE = ROOT / "tests" / "course_fixture" / "solutions" / "99_fixture.ipynb"
SOLUTIONS = sorted((ROOT / "solutions").glob("*.ipynb"))

ASSIGNMENT = "ps01"  # the document's assignment name
ROOT_PLACEHOLDER = "/path/to/vae-course"  # the path the reader replaces in the config
# The commands the document gives, in its order; each must appear in it verbatim.
FLOW = [
    ("generate_assignment", ASSIGNMENT),
    ("autograde", ASSIGNMENT),
    ("export",),
    ("generate_feedback", ASSIGNMENT),
]
CHECKSUM_WARNING = re.compile(r"Attribute 'checksum' for cell (\S+) has changed!")


def documented_config() -> str:
    """The ```python block right after the document's "Save this as `nbgrader_config.py`"."""
    text = DOC.read_text(encoding="utf-8")
    match = re.search(r"Save this as `nbgrader_config\.py`.*?```python\n(.*?)```", text, re.S)
    assert match, f"{DOC.name}: no nbgrader_config.py block"
    return match.group(1)


def documented_commands() -> list[str]:
    text = DOC.read_text(encoding="utf-8")
    blocks = re.findall(r"```bash\n(.*?)```", text, re.S)
    lines = [line.split("#")[0].strip() for block in blocks for line in block.splitlines()]
    return [line for line in lines if line.startswith("nbgrader ")]


def test_the_tested_flow_is_the_documented_one():
    config = documented_config()
    assert f'c.CourseDirectory.root = "{ROOT_PLACEHOLDER}"' in config
    assert "c.ExecutePreprocessor.timeout = 600" in config
    assert '"nbgrader.preprocessors.ClearHiddenTests"' in config
    commands = documented_commands()
    flow = ["nbgrader " + " ".join(step) for step in FLOW]
    assert [c for c in commands if c in flow] == flow, commands
    assert "/home/you" not in DOC.read_text(encoding="utf-8")


# ----------------------------------------------------------------------------- the course


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


Answer = Callable[[str, str, str], str]  # (notebook, grade_id, the solution's code) -> code


def solved(notebook: str, grade_id: str, code: str) -> str:
    return code


def submit(root: Path, student: str, answer: Answer | None) -> None:
    """A student's submission: the release, with every solution cell filled in by ``answer``
    from the course's source notebook (None: the release untouched)."""
    folder = root / "submitted" / student / ASSIGNMENT
    folder.mkdir(parents=True)
    for path in sorted((root / "release" / ASSIGNMENT).glob("*.ipynb")):
        source = nbformat.read(root / "source" / ASSIGNMENT / path.name, as_version=4)
        code = {
            c.metadata["nbgrader"]["grade_id"]: c.source
            for c in source.cells
            if c.metadata.get("nbgrader", {}).get("solution")
        }
        nb = nbformat.read(path, as_version=4)
        for cell in nb.cells:
            grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
            if answer is not None and grade_id in code:
                cell.source = answer(path.stem, grade_id, code[grade_id])
        nbformat.write(nb, folder / path.name)


def scores(root: Path, student: str) -> dict[str, dict[str, tuple[float, float]]]:
    """notebook -> grade_id -> (score, max_score), read from nbgrader's gradebook."""
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{root / 'gradebook.db'}") as gb:
        submission = gb.find_submission(ASSIGNMENT, student)
        return {
            nb.name: {g.name: (g.score, g.max_score) for g in nb.grades}
            for nb in submission.notebooks
        }


def run_course(
    tmp_path: Path, notebooks: list[Path], students: dict[str, Answer | None]
) -> tuple[Path, dict[str, str], dict[str, float]]:
    """The document's flow; returns the course root, each command's output and its time."""
    root = tmp_path / "vae-course"
    (root / "source" / ASSIGNMENT).mkdir(parents=True)
    for path in notebooks:
        shutil.copy(path, root / "source" / ASSIGNMENT / path.name)
    config = documented_config().replace(ROOT_PLACEHOLDER, str(root))
    (root / "nbgrader_config.py").write_text(config)
    outputs, seconds = {}, {}
    for step in FLOW:
        if step[0] == "autograde":
            for student, answer in students.items():
                submit(root, student, answer)
        t0 = time.monotonic()
        outputs[step[0]] = nbgrader(root, *step)
        seconds[step[0]] = round(time.monotonic() - t0, 1)
    print(f"\nnbgrader, {len(notebooks)} notebook(s), {len(students)} students: {seconds} s")
    return root, outputs, seconds


def hidden_lines(path: Path) -> list[str]:
    """Lines of hidden-test code (long enough to be telling) that no released cell shows."""
    solution = nbformat.read(path, as_version=4)
    released = "\n".join(c.source for c in make_exercise(solution).cells)
    lines = []
    for cell in solution.cells:
        inside = False
        for line in cell.source.split("\n"):
            if BEGIN_HIDDEN in line:
                inside = True
            elif END_HIDDEN in line:
                inside = False
            elif inside and len(line.strip()) >= 12 and line.strip() not in released:
                lines.append(line.strip())
    return lines


def page_text(html_text: str) -> str:
    """What a reader of an HTML page sees: tags removed (highlighting splits code into spans)."""
    return html.unescape(re.sub(r"<[^>]+>", "", html_text))


def check_release(root: Path, notebooks: list[Path]) -> None:
    """nbgrader's student version has the same cells as ours (python -m minivae.course
    exercises)."""
    for path in notebooks:
        release = nbformat.read(root / "release" / ASSIGNMENT / path.name, as_version=4)
        ours = make_exercise(nbformat.read(path, as_version=4))
        assert [c.source for c in release.cells] == [c.source for c in ours.cells], path.name


def check_checksum_warnings(notebooks: list[Path], output: str, students: list[str]) -> None:
    """One warning per graded cell with hidden tests, per student, and no other change."""
    expected: Counter[str] = Counter()
    for path in notebooks:
        for cell in nbformat.read(path, as_version=4).cells:
            if cell.metadata.get("nbgrader", {}).get("grade") and BEGIN_HIDDEN in cell.source:
                expected[cell.metadata["nbgrader"]["grade_id"]] += len(students)
    assert Counter(CHECKSUM_WARNING.findall(output)) == expected
    assert len(re.findall(r"Attribute '\w+' for cell", output)) == sum(expected.values()), (
        "a locked cell changed in a way other than its hidden tests"
    )


def check_feedback(root: Path, notebooks: list[Path], students: list[str]) -> None:
    """One page per student and notebook, with its score and no line of hidden-test code."""
    from nbconvert import HTMLExporter

    exporter = HTMLExporter()
    for path in notebooks:
        lines = hidden_lines(path)
        assert lines, f"{path.name}: no hidden-test lines to look for"
        autograded = root / "autograded" / "solved" / ASSIGNMENT / path.name
        # The check can fail: the autograded notebook (what feedback renders) has them all.
        unfiltered = page_text(exporter.from_filename(str(autograded))[0])
        assert BEGIN_HIDDEN in unfiltered and all(line in unfiltered for line in lines)
        for student in students:
            page = root / "feedback" / student / ASSIGNMENT / f"{path.stem}.html"
            text = page_text(page.read_text(encoding="utf-8"))
            total = sum(v[0] for v in scores(root, student)[path.stem].values())
            assert re.search(rf"Score: {total:.1f} / ", text), f"{page}: no score {total}"
            assert "BEGIN HIDDEN TESTS" not in text, f"{page} shows the hidden-test markers"
            shown = [line for line in lines if line in text]
            assert not shown, f"{page} shows hidden-test code: {shown[:3]}"


def check_scores(root: Path, notebooks: list[Path]) -> None:
    """The solution gets full marks, the untouched release 0; grades.csv has the same totals."""
    solved, untouched = scores(root, "solved"), scores(root, "untouched")
    with open(root / "grades.csv", newline="") as f:
        totals = {row["student_id"]: float(row["raw_score"]) for row in csv.DictReader(f)}
    assert totals["solved"] == sum(v[0] for nb in solved.values() for v in nb.values())
    assert totals["untouched"] == 0
    for path in notebooks:
        name = path.stem
        assert solved[name], f"{path.name}: no graded cells in the gradebook"
        lost = {k: v for k, v in solved[name].items() if v[0] != v[1]}
        assert not lost, f"{path.name}: the solution loses points in {lost}"
        earned = {k: v for k, v in untouched[name].items() if v[0] != 0}
        assert not earned, f"{path.name}: the untouched release earns points in {earned}"


def check_course(
    root: Path, notebooks: list[Path], outputs: dict[str, str], students: list[str]
) -> None:
    # The course's copies: what nbgrader graded (solutions/ may change while the test runs).
    notebooks = [root / "source" / ASSIGNMENT / path.name for path in notebooks]
    check_release(root, notebooks)
    check_checksum_warnings(notebooks, outputs["autograde"], students)
    check_feedback(root, notebooks, students)
    check_scores(root, notebooks)


@pytest.mark.slow
def test_nbgrader_fixture(tmp_path):
    def visible_only(notebook: str, grade_id: str, code: str) -> str:
        # Passes the visible test of linear_forward (a batch of 4), fails its hidden one (a
        # batch of 7): the hidden check's traceback is where hidden code could leak.
        return code.replace("out = x @ W + b", "out = x @ W + b if x.shape[0] == 4 else x @ W")

    students = {"solved": solved, "untouched": None, "visible_only": visible_only}
    root, outputs, _ = run_course(tmp_path, [FIXTURE], students)
    check_course(root, [FIXTURE], outputs, list(students))
    assert scores(root, "solved")["99_fixture"] == {
        "test_linear_forward": (2.0, 2.0),
        "test_mse": (1.0, 1.0),
    }
    assert scores(root, "visible_only")["99_fixture"] == {
        "test_linear_forward": (0.0, 2.0),
        "test_mse": (1.0, 1.0),
    }
    graded = nbformat.read(root / "autograded" / "visible_only" / ASSIGNMENT / FIXTURE.name, 4)
    (test,) = [
        c for c in graded.cells if c.metadata["nbgrader"]["grade_id"] == "test_linear_forward"
    ]
    (error,) = [o for o in test.outputs if o.output_type == "error"]
    assert error.ename == "ExerciseError"  # the hidden check failed ...
    assert error.traceback == [error.traceback[-1]]  # ... with a one-line (Minimal) traceback
    known_hidden_call = "linear_forward(x2, W, b)"
    assert known_hidden_call in test.source
    for student in students:
        page = root / "feedback" / student / ASSIGNMENT / "99_fixture.html"
        assert known_hidden_call not in page_text(page.read_text(encoding="utf-8"))


@pytest.mark.slow
@pytest.mark.skipif(not SOLUTIONS, reason="solutions/ has no notebooks yet")
def test_nbgrader_real_solutions(tmp_path):
    students = {"solved": solved, "untouched": None}
    root, outputs, _ = run_course(tmp_path, SOLUTIONS, students)
    check_course(root, SOLUTIONS, outputs, list(students))
