"""Graded tests with teeth: each typical learner mistake planted in a solution must fail its own
exercise's tests, with the message that names it, and no other exercise's tests.

For every solution notebook ``solutions/NN_name.ipynb``, ``tests/mistakes/chNN_name.py`` defines
``MISTAKES = {exercise_id: [(description, old, new, expected), ...]}``: ``old`` is an exact
substring of the solution cell, ``new`` the learner's slip, and ``expected`` a substring (or,
failing that, a regular expression) that the message of the failing graded cell must contain — so
a hint that blames the wrong thing fails the test.

The harness runs the notebook's code cells in order, in this process, in one namespace (matplotlib
off-screen, ``plt.show`` a no-op). Then, for each mistake, it re-runs the solution cell with every
``old`` replaced by ``new`` and runs every code cell after it to the end of the notebook: the
exercise's own graded cells must fail (the first failure's message is checked) and every later
graded cell must still pass, since each exercise is graded on its own (its tests use the library's
version of any earlier piece). It then restores the solution cell and goes on. Every exercise also
gets a planted *blank* (its solution regions replaced by ``raise NotImplementedError()``, as in the
student version), which must say "not written yet" and cost no other exercise its points.

Run with ``-s`` to see the table of mistakes and the message each one produced.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import os
import re
import traceback
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

nbformat = pytest.importorskip("nbformat")

from minivae.course.generate import clear_solutions  # noqa: E402  (needs nbformat)

ROOT = Path(__file__).resolve().parents[2]
SOLUTIONS = sorted((ROOT / "solutions").glob("*.ipynb"))
FIXTURE = ROOT / "tests" / "course_fixture" / "solutions" / "99_fixture.ipynb"
FIXTURE_MISTAKES = ROOT / "tests" / "course_fixture" / "mistakes_99_fixture.py"
BLANK = "the exercise left blank"
BLANK_MESSAGE = r"^NotImplementedError: \w+ is not written yet"

Mistake = tuple[str, str, str, str]


def mistakes_file(notebook: Path) -> Path:
    """tests/mistakes/chNN_name.py for solutions/NN_name.ipynb."""
    return ROOT / "tests" / "mistakes" / f"ch{notebook.stem}.py"


def load_mistakes(path: Path) -> dict[str, list[Mistake]]:
    """The MISTAKES dict of a mistakes file, loaded by path (tests/mistakes is not a package)."""
    spec = importlib.util.spec_from_file_location(f"planted_mistakes_{path.stem}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    mistakes = getattr(module, "MISTAKES", None)
    assert isinstance(mistakes, dict), f"{path} must define a dict MISTAKES"
    return mistakes


def message_matches(expected: str, message: str) -> bool:
    """``expected`` occurs in ``message``, as a substring or else as a regular expression."""
    if expected in message:
        return True
    try:
        return re.search(expected, message, flags=re.S) is not None
    except re.error:
        return False


# ----------------------------------------------------------------------------- the notebook


def grade_id(cell: Any) -> str | None:
    return cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")


def is_solution(cell: Any) -> bool:
    return cell.cell_type == "code" and bool(cell.metadata.get("nbgrader", {}).get("solution"))


def is_graded(cell: Any) -> bool:
    return cell.cell_type == "code" and bool(cell.metadata.get("nbgrader", {}).get("grade"))


def code_cells(path: Path) -> list[Any]:
    return [c for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code"]


def groups(cells: list[Any]) -> dict[int, list[int]]:
    """Solution cell index -> indices of the cells after it up to its last graded test cell."""
    result: dict[int, list[int]] = {}
    for i, cell in enumerate(cells):
        if not is_solution(cell):
            continue
        following: list[int] = []
        for j in range(i + 1, len(cells)):
            if is_solution(cells[j]):
                break
            following.append(j)
        graded = [j for j in following if is_graded(cells[j])]
        result[i] = following[: following.index(graded[-1]) + 1] if graded else []
    return result


def blank(source: str) -> str:
    """The solution cell as the student gets it: each solution region replaced by the stub."""
    return clear_solutions(source, "code")


@contextlib.contextmanager
def quiet_matplotlib_and_cwd(folder: Path):
    """Off-screen matplotlib, plt.show a no-op, figures closed; run in the notebook's folder."""
    os.environ.setdefault("MPLBACKEND", "Agg")
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:  # pragma: no cover - matplotlib is a course dependency
        plt = None
    old_show = plt.show if plt else None
    old_cwd = Path.cwd()
    if plt:
        plt.show = lambda *args, **kwargs: None
    os.chdir(folder)
    try:
        with warnings.catch_warnings():
            # as in Jupyter: warnings are shown, never raised (pytest.ini's "error" filters
            # would otherwise turn a RuntimeWarning in minivae into a failed graded cell)
            warnings.simplefilter("ignore")
            yield
    finally:
        os.chdir(old_cwd)
        if plt:
            plt.show = old_show
            plt.close("all")


def run_cell(source: str, namespace: dict[str, Any], name: str) -> None:
    exec(compile(source, f"<cell {name}>", "exec"), namespace)  # noqa: S102


def first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0] if text else ''}"


@dataclass
class Outcome:
    exercise: str
    description: str
    expected: str
    caught: bool
    detail: str
    message: str = ""
    cascade: list[str] = field(default_factory=list)

    @property
    def message_ok(self) -> bool:
        return self.caught and message_matches(self.expected, self.message)


def plant_mistakes(
    path: Path, mistakes: dict[str, list[Mistake]], *, with_blanks: bool = True
) -> dict[tuple[str, int], Outcome]:
    """Run the notebook at ``path`` in-process, planting each mistake; (exercise, k) -> Outcome.

    ``k`` indexes the exercise's mistakes; the planted blank (``with_blanks``) has k = -1.
    Raises AssertionError if the unmodified solution fails one of its own cells.
    """
    cells = code_cells(path)
    group_of = groups(cells)
    namespace: dict[str, Any] = {"__name__": "__main__", "display": lambda *a, **k: None}
    outcomes: dict[tuple[str, int], Outcome] = {}

    def run(index: int, source: str | None = None) -> None:
        cell = cells[index]
        try:
            run_cell(
                cell.source if source is None else source, namespace, grade_id(cell) or str(index)
            )
        except Exception:
            if "raises-exception" in cell.metadata.get("tags", []):
                return
            raise

    with quiet_matplotlib_and_cwd(path.parent):
        for i, cell in enumerate(cells):
            try:
                run(i)
            except Exception as err:
                raise AssertionError(
                    f"{path.name}: the unmodified solution fails in cell {grade_id(cell) or i}:\n"
                    + "".join(traceback.format_exception(err))
                ) from None
        for s in group_of:
            exercise = grade_id(cells[s])
            planted = [(k, *entry) for k, entry in enumerate(mistakes.get(exercise, []))]
            if with_blanks:
                planted.append((-1, BLANK, None, None, BLANK_MESSAGE))
            for k, description, old, new, expected in planted:
                outcomes[(exercise, k)] = try_mistake(
                    cells, s, group_of[s], exercise, description, old, new, expected, run
                )
                run(s)  # restore the solution cell; the next planting re-runs the cells after it
    return outcomes


def try_mistake(cells, s, group, exercise, description, old, new, expected, run) -> Outcome:
    source = cells[s].source
    outcome = Outcome(exercise, description, expected, False, "")
    if old is None:  # the planted blank
        changed = blank(source)
        if changed == source:
            outcome.detail = "the cell has no solution region"
            return outcome
    elif old not in source:
        outcome.detail = f"{old!r} does not occur in the cell"
        return outcome
    elif old == new:
        outcome.detail = "old and new are the same"
        return outcome
    else:
        changed = source.replace(old, new)
    if not group:
        outcome.detail = "no graded test cell follows it"
        return outcome
    try:
        run(s, changed)
    except Exception as err:
        outcome.detail = (
            f"the changed solution cell itself raises ({first_line(err)}); "
            "a planted mistake should run and be caught by the graded tests"
        )
        return outcome
    for j in range(s + 1, len(cells)):
        try:
            run(j)
        except Exception as err:
            if j in group:
                if not is_graded(cells[j]):
                    outcome.detail = (
                        f"ungraded cell {grade_id(cells[j]) or j} raised before the tests "
                        f"({first_line(err)})"
                    )
                    return outcome
                if not outcome.caught:
                    outcome.caught = True
                    outcome.message = f"{type(err).__name__}: {err}"
                    outcome.detail = f"{grade_id(cells[j])}: {first_line(err)}"
            elif is_graded(cells[j]):
                outcome.cascade.append(f"{grade_id(cells[j])}: {first_line(err)}")
            # an ungraded cell after the exercise's tests (a demo built on the learner's
            # pieces) may fail: it costs no points
    if not outcome.caught:
        outcome.detail = "every graded test cell passed"
    return outcome


@functools.cache
def outcomes_for(path_str: str, mistakes_path_str: str) -> dict[tuple[str, int], Outcome]:
    path = Path(path_str)
    # the fixture's second exercise is top-level code, not a function: a blank raises in its cell
    outcomes = plant_mistakes(
        path, load_mistakes(Path(mistakes_path_str)), with_blanks=path != FIXTURE
    )
    print(f"\nplanted mistakes in {path.name}:")
    for outcome in outcomes.values():
        mark = "caught" if outcome.message_ok and not outcome.cascade else "FAILED"
        print(f"  {mark:6}  {outcome.exercise}: {outcome.description} -> {outcome.detail}")
        for line in outcome.cascade:
            print(f"            cascades into {line}")
    return outcomes


# ----------------------------------------------------------------------------- the tests


def coverage_problems(path: Path, mistakes: dict[str, list[Mistake]]) -> list[str]:
    problems = []
    cells = {grade_id(c): c for c in code_cells(path) if is_solution(c)}
    for exercise, cell in cells.items():
        planted = mistakes.get(exercise, [])
        if not planted:
            problems.append(f"exercise {exercise!r} has no planted mistake")
        for entry in planted:
            if not (
                isinstance(entry, tuple)
                and len(entry) == 4
                and all(isinstance(part, str) for part in entry)
            ):
                problems.append(
                    f"{exercise}: {entry!r} is not (description, old, new, expected message)"
                )
            elif entry[1] not in cell.source:
                problems.append(
                    f"{exercise}: {entry[0]!r}: {entry[1]!r} does not occur in the cell"
                )
            elif not entry[3].strip():
                problems.append(f"{exercise}: {entry[0]!r} has no expected message")
        descriptions = [entry[0] for entry in planted if isinstance(entry, tuple) and entry]
        for twice in sorted({d for d in descriptions if descriptions.count(d) > 1}):
            problems.append(f"{exercise}: the description {twice!r} is used twice")
    for exercise in mistakes:
        if exercise not in cells:
            problems.append(f"MISTAKES names {exercise!r}, which is not a solution cell's grade_id")
    return problems


def pairs() -> list[tuple[Path, Path]]:
    return [(FIXTURE, FIXTURE_MISTAKES)] + [(p, mistakes_file(p)) for p in SOLUTIONS]


def cases() -> list[Any]:
    """One pytest case per planted mistake (and blank) of every solution and of the fixture."""
    params = []
    for notebook, path in pairs():
        if not path.exists():
            continue
        try:
            mistakes = load_mistakes(path)
        except Exception:  # reported by test_every_exercise_has_planted_mistakes
            continue
        exercises = [grade_id(c) for c in code_cells(notebook) if is_solution(c)]
        for exercise in exercises:
            entries = mistakes.get(exercise, [])
            for k, entry in enumerate(entries):
                label = entry[0] if isinstance(entry, tuple) and entry else str(k)
                params.append(
                    pytest.param(
                        notebook, path, exercise, k, id=f"{notebook.stem}-{exercise}-{label}"
                    )
                )
            if notebook != FIXTURE:
                params.append(
                    pytest.param(
                        notebook, path, exercise, -1, id=f"{notebook.stem}-{exercise}-blank"
                    )
                )
    return params


@pytest.mark.parametrize(
    "notebook", [FIXTURE, *SOLUTIONS], ids=[p.stem for p in [FIXTURE, *SOLUTIONS]]
)
def test_every_exercise_has_planted_mistakes(notebook):
    path = FIXTURE_MISTAKES if notebook == FIXTURE else mistakes_file(notebook)
    assert path.exists(), f"{notebook.name} needs planted mistakes in {path.relative_to(ROOT)}"
    mistakes = load_mistakes(path)
    problems = coverage_problems(notebook, mistakes)
    counts = ", ".join(f"{e}: {len(m)}" for e, m in mistakes.items())
    print(f"\n{notebook.name}: {sum(len(m) for m in mistakes.values())} mistakes ({counts})")
    assert not problems, f"{path.relative_to(ROOT)}:\n  " + "\n  ".join(problems)


@pytest.mark.slow
@pytest.mark.parametrize(("notebook", "mistakes_path", "exercise", "k"), cases())
def test_planted_mistake_fails_its_own_tests_with_its_message(notebook, mistakes_path, exercise, k):
    outcome = outcomes_for(str(notebook), str(mistakes_path))[(exercise, k)]
    what = f"{notebook.name}, exercise {exercise}: the planted mistake {outcome.description!r}"
    assert outcome.caught, f"{what} was not caught: {outcome.detail}"
    assert outcome.message_ok, (
        f"{what} was caught with the wrong message.\n"
        f"  expected it to contain: {outcome.expected!r}\n  got: {outcome.message}"
    )
    assert not outcome.cascade, (
        f"{what} also fails the graded tests of other exercises (each exercise is graded on its "
        "own):\n  " + "\n  ".join(outcome.cascade)
    )


def test_the_harness_reports_a_mistake_that_no_test_catches():
    """A mistake the tests cannot see (a changed comment) is reported as missed."""
    mistakes = {
        "linear_forward": [
            ("a harmless change", "out = x @ W + b", "out = b + x @ W", "anything"),
            ("the bias forgotten", "out = x @ W + b", "out = x @ W", "the bias is subtracted"),
        ],
        "mse": [("a crash", "/ x_hat.shape[0]", "/ undefined_name", "anything")],
    }
    outcomes = plant_mistakes(FIXTURE, mistakes, with_blanks=False)
    harmless = outcomes[("linear_forward", 0)]
    assert not harmless.caught and harmless.detail == "every graded test cell passed"
    wrong_words = outcomes[("linear_forward", 1)]
    assert wrong_words.caught and not wrong_words.message_ok
    crash = outcomes[("mse", 0)]
    assert not crash.caught and "the changed solution cell itself raises (NameError" in crash.detail


def test_message_matches_substrings_and_regular_expressions():
    assert message_matches("the sign is flipped", "dx: the sign is flipped (you got minus)")
    assert message_matches(r"\d+ times too large", "loss: 4 times too large")
    assert not message_matches("the bias", "dx: the sign is flipped")
    assert not message_matches("(unbalanced", "dx: the sign is flipped")
