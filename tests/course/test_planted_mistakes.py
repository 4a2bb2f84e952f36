"""Graded tests with teeth: each typical learner mistake planted in a solution must fail its tests.

For every solution notebook ``solutions/NN_name.ipynb``, ``tests/mistakes/chNN_name.py`` defines
``MISTAKES = {exercise_id: [(description, old, new), ...]}``. The harness runs the notebook's code
cells in order, in this process, in one namespace (matplotlib off-screen, ``plt.show`` a no-op).
Right after each solution cell's graded test cells have passed, it plants each mistake in turn:
it re-runs the solution cell with every ``old`` replaced by ``new``, runs the code cells after it up
to its last graded test cell, and records whether a graded test cell raised. It then restores the
state (re-runs the original solution cell and those cells) and goes on.

One test per mistake (its id names the chapter, exercise and mistake), plus one per notebook
checking that every exercise has a mistake and that each ``old`` occurs in its cell. Run with
``-s`` to see the table of mistakes and the message each one produced.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import os
import traceback
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

nbformat = pytest.importorskip("nbformat")

ROOT = Path(__file__).resolve().parents[2]
SOLUTIONS = sorted((ROOT / "solutions").glob("*.ipynb"))
FIXTURE = ROOT / "tests" / "course_fixture" / "solutions" / "99_fixture.ipynb"
FIXTURE_MISTAKES = ROOT / "tests" / "course_fixture" / "mistakes_99_fixture.py"

Mistake = tuple[str, str, str]


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
            warnings.simplefilter("default")
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
    caught: bool
    detail: str


def plant_mistakes(
    path: Path, mistakes: dict[str, list[Mistake]]
) -> dict[tuple[str, int], Outcome]:
    """Run the notebook at ``path`` in-process, planting each mistake; (exercise, k) -> Outcome.

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
        pending: dict[int, int] = {}  # last cell of a group -> its solution cell
        for i in group_of:
            if group_of[i]:
                pending[group_of[i][-1]] = i
        for i, cell in enumerate(cells):
            try:
                run(i)
            except Exception as err:
                raise AssertionError(
                    f"{path.name}: the unmodified solution fails in cell {grade_id(cell) or i}:\n"
                    + "".join(traceback.format_exception(err))
                ) from None
            if i in group_of and not group_of[i]:
                for k, (description, _, _) in enumerate(mistakes.get(grade_id(cell), [])):
                    outcomes[(grade_id(cell), k)] = Outcome(
                        grade_id(cell), description, False, "no graded test cell follows it"
                    )
            if i not in pending:
                continue
            s = pending[i]
            exercise = grade_id(cells[s])
            for k, (description, old, new) in enumerate(mistakes.get(exercise, [])):
                outcomes[(exercise, k)] = try_mistake(
                    cells, s, group_of[s], exercise, description, old, new, run
                )
                # restore: the original solution cell and the cells after it
                for j in [s, *group_of[s]]:
                    run(j)
    return outcomes


def try_mistake(cells, s, group, exercise, description, old, new, run) -> Outcome:
    source = cells[s].source
    if old not in source:
        return Outcome(exercise, description, False, f"{old!r} does not occur in the cell")
    if old == new:
        return Outcome(exercise, description, False, "old and new are the same")
    try:
        run(s, source.replace(old, new))
    except Exception as err:
        return Outcome(
            exercise,
            description,
            False,
            f"the changed solution cell itself raises ({first_line(err)}); "
            "a planted mistake should run and be caught by the graded tests",
        )
    for j in group:
        try:
            run(j)
        except Exception as err:
            if is_graded(cells[j]):
                return Outcome(
                    exercise, description, True, f"{grade_id(cells[j])}: {first_line(err)}"
                )
            return Outcome(
                exercise,
                description,
                False,
                f"ungraded cell {grade_id(cells[j]) or j} raised before the tests "
                f"({first_line(err)})",
            )
    return Outcome(exercise, description, False, "every graded test cell passed")


@functools.cache
def outcomes_for(path_str: str, mistakes_path_str: str) -> dict[tuple[str, int], Outcome]:
    path = Path(path_str)
    outcomes = plant_mistakes(path, load_mistakes(Path(mistakes_path_str)))
    print(f"\nplanted mistakes in {path.name}:")
    for outcome in outcomes.values():
        mark = "caught" if outcome.caught else "MISSED"
        print(f"  {mark:6}  {outcome.exercise}: {outcome.description} -> {outcome.detail}")
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
            if not (isinstance(entry, tuple) and len(entry) == 3):
                problems.append(f"{exercise}: {entry!r} is not (description, old, new)")
            elif entry[1] not in cell.source:
                problems.append(
                    f"{exercise}: {entry[0]!r}: {entry[1]!r} does not occur in the cell"
                )
    for exercise in mistakes:
        if exercise not in cells:
            problems.append(f"MISTAKES names {exercise!r}, which is not a solution cell's grade_id")
    return problems


def cases() -> list[Any]:
    """One pytest case per planted mistake of every solution notebook (and the fixture)."""
    params = []
    pairs = [(FIXTURE, FIXTURE_MISTAKES)] + [(p, mistakes_file(p)) for p in SOLUTIONS]
    for notebook, path in pairs:
        if not path.exists():
            continue
        try:
            mistakes = load_mistakes(path)
        except Exception:  # reported by test_every_exercise_has_planted_mistakes
            continue
        for exercise, entries in mistakes.items():
            for k, entry in enumerate(entries):
                label = entry[0] if isinstance(entry, tuple) and entry else str(k)
                params.append(
                    pytest.param(
                        notebook, path, exercise, k, id=f"{notebook.stem}-{exercise}-{label}"
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
def test_planted_mistake_fails_the_graded_tests(notebook, mistakes_path, exercise, k):
    outcome = outcomes_for(str(notebook), str(mistakes_path))[(exercise, k)]
    assert outcome.caught, (
        f"{notebook.name}, exercise {exercise}: the planted mistake {outcome.description!r} "
        f"was not caught: {outcome.detail}"
    )


def test_the_harness_reports_a_mistake_that_no_test_catches(tmp_path):
    """A mistake the tests cannot see (a changed comment) is reported as missed."""
    mistakes = {
        "linear_forward": [("a harmless change", "out = x @ W + b", "out = b + x @ W")],
        "mse": [("a crash", "/ x_hat.shape[0]", "/ undefined_name")],
    }
    outcomes = plant_mistakes(FIXTURE, mistakes)
    harmless = outcomes[("linear_forward", 0)]
    assert not harmless.caught and harmless.detail == "every graded test cell passed"
    crash = outcomes[("mse", 0)]
    assert not crash.caught and "the changed solution cell itself raises (NameError" in crash.detail
