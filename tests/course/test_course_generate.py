"""The exercise generator: solutions/NN_name.ipynb -> exercises/NN_name.ipynb, as nbgrader would.

Checked on a small fixture solution (tests/course_fixture/solutions/99_fixture.ipynb) and, in
``test_exercises_up_to_date``, on the real solutions/ -> exercises/ of the repository.
"""

from __future__ import annotations

import copy
import shutil
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")

from minivae.course.__main__ import main as course_main  # noqa: E402
from minivae.course.generate import (  # noqa: E402
    NotebookFormatError,
    clear_solutions,
    generate_exercises,
    make_exercise,
    notebook_text,
    remove_hidden_tests,
    validate_solution,
)

ROOT = Path(__file__).resolve().parents[2]
FIXTURE = ROOT / "tests" / "course_fixture" / "solutions" / "99_fixture.ipynb"


def load_fixture():
    return nbformat.read(FIXTURE, as_version=4)


def cell_by_id(nb, grade_id):
    for cell in nb.cells:
        if cell.metadata.get("nbgrader", {}).get("grade_id") == grade_id:
            return cell
    raise KeyError(grade_id)


@pytest.fixture
def dirs(tmp_path):
    solutions, exercises = tmp_path / "solutions", tmp_path / "exercises"
    solutions.mkdir()
    shutil.copy(FIXTURE, solutions / FIXTURE.name)
    return solutions, exercises


# ----------------------------------------------------------------------------- regions


def test_clear_solutions_keeps_the_indentation_of_the_begin_line():
    source = (
        "def f(x):\n"
        '    """doc"""\n'
        "    ### BEGIN SOLUTION\n"
        "    if x > 0:\n"
        "        return x\n"
        "    return -x\n"
        "    ### END SOLUTION\n"
        "\n"
        "### BEGIN SOLUTION\n"
        "y = f(2)\n"
        "### END SOLUTION\n"
        "print(y)"
    )
    assert clear_solutions(source) == (
        "def f(x):\n"
        '    """doc"""\n'
        "    # YOUR CODE HERE\n"
        "    raise NotImplementedError()\n"
        "\n"
        "# YOUR CODE HERE\n"
        "raise NotImplementedError()\n"
        "print(y)"
    )
    assert clear_solutions("### BEGIN SOLUTION\nan answer\n### END SOLUTION", "markdown") == (
        "YOUR ANSWER HERE"
    )


def test_remove_hidden_tests_removes_the_region_and_its_markers():
    source = "a = 1\n### BEGIN HIDDEN TESTS\nassert a == 1\n### END HIDDEN TESTS\nprint('ok')"
    assert remove_hidden_tests(source) == "a = 1\nprint('ok')"


@pytest.mark.parametrize(
    ("source", "words"),
    [
        ("### BEGIN SOLUTION\nx = 1", "has no '### END SOLUTION'"),
        ("x = 1\n### END SOLUTION", "without a '### BEGIN SOLUTION' before it"),
        ("### BEGIN SOLUTION\n### BEGIN SOLUTION\n### END SOLUTION", "nested"),
    ],
)
def test_unbalanced_markers_are_refused(source, words):
    with pytest.raises(ValueError, match=words):
        clear_solutions(source)


# ----------------------------------------------------------------------------- notebook


def test_fixture_exercise_replaces_solutions_and_removes_hidden_tests():
    solution = load_fixture()
    exercise = make_exercise(solution)
    linear = cell_by_id(exercise, "linear_forward").source
    assert "x @ W + b\n" not in linear.split('"""')[-1]  # the body is gone, the docstring stays
    assert linear.endswith("    # YOUR CODE HERE\n    raise NotImplementedError()")
    assert linear.startswith("def linear_forward(x, W, b):\n")
    mse = cell_by_id(exercise, "mse").source
    assert "# YOUR CODE HERE\nraise NotImplementedError()\nprint(loss)" in mse
    assert "np.sum" not in mse
    test = cell_by_id(exercise, "test_linear_forward").source
    assert "HIDDEN" not in test and "x2" not in test
    assert 'feedback.check_close("out", out, x @ W + b' in test  # visible checks stay
    for cell in exercise.cells:
        assert "BEGIN SOLUTION" not in cell.source and "END SOLUTION" not in cell.source


def test_metadata_and_ids_are_kept_and_the_solution_is_not_modified():
    solution = load_fixture()
    before = copy.deepcopy(solution)
    exercise = make_exercise(solution)
    assert solution == before
    assert [c.metadata for c in exercise.cells] == [c.metadata for c in solution.cells]
    assert [c.get("id") for c in exercise.cells] == [c.get("id") for c in solution.cells]
    assert exercise.metadata == solution.metadata


def test_outputs_and_execution_counts_are_cleared():
    solution = load_fixture()
    cell = cell_by_id(solution, "mse")
    cell.execution_count = 7
    cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text="0.5\n")]
    cell.metadata["execution"] = {"iopub.status.busy": "2026-01-01T00:00:00Z"}
    exercise = make_exercise(solution)
    for c in exercise.cells:
        if c.cell_type == "code":
            assert c.outputs == [] and c.execution_count is None
        assert "execution" not in c.metadata


def test_output_is_deterministic_json_with_a_trailing_newline():
    text = notebook_text(make_exercise(load_fixture()))
    assert text.endswith("}\n") and not text.endswith("\n\n")
    assert text == notebook_text(make_exercise(load_fixture()))
    assert text.index('"cells"') < text.index('"metadata": {\n  "kernelspec"')  # sorted keys


# ----------------------------------------------------------------------------- validation


def break_fixture(how: str):
    nb = load_fixture()
    test = cell_by_id(nb, "test_linear_forward")
    solution = cell_by_id(nb, "linear_forward")
    if how == "extra key":
        test.metadata.nbgrader["checksum"] = "abc"
    elif how == "schema":
        test.metadata.nbgrader["schema_version"] = 1
    elif how == "duplicate":
        cell_by_id(nb, "test_mse").metadata.nbgrader["grade_id"] = "test_linear_forward"
    elif how == "no points":
        del test.metadata.nbgrader["points"]
    elif how == "points on ungraded":
        solution.metadata.nbgrader["points"] = 1
    elif how == "unbalanced":
        solution.source = solution.source.replace("    ### END SOLUTION", "")
    elif how == "solution outside":
        cell_by_id(nb, "setup").source += "\n### BEGIN SOLUTION\n### END SOLUTION"
    elif how == "hidden outside":
        cell_by_id(nb, "setup").source += "\n### BEGIN HIDDEN TESTS\n### END HIDDEN TESTS"
    elif how == "magic":
        cell_by_id(nb, "setup").source = "%matplotlib inline\n" + cell_by_id(nb, "setup").source
    elif how == "no grade_id":
        del test.metadata.nbgrader["grade_id"]
    elif how == "locked solution":
        solution.metadata.nbgrader["locked"] = True
    elif how == "no locked":
        del solution.metadata.nbgrader["locked"]
    elif how == "markdown solution":
        cell_by_id(nb, "md_mse").metadata.nbgrader.update(solution=True, locked=False)
    return nb


@pytest.mark.parametrize(
    ("how", "words"),
    [
        ("extra key", "has keys ['checksum'] that nbgrader does not know"),
        ("schema", "schema_version is 1, expected 3"),
        ("duplicate", "grade_id 'test_linear_forward' is used twice"),
        ("no points", "a graded cell needs metadata.nbgrader.points"),
        ("points on ungraded", "points on a cell that is not graded"),
        ("unbalanced", "has no '### END SOLUTION'"),
        ("solution outside", "is not a solution cell"),
        ("hidden outside", "is not a graded test cell"),
        ("magic", "IPython magic or shell command ('%matplotlib inline')"),
        ("no grade_id", "metadata.nbgrader has no grade_id"),
        ("locked solution", "a solution cell cannot be locked"),
        ("no locked", "metadata.nbgrader.locked must be true or false, got None"),
        ("markdown solution", "markdown cell to be both a solution and a graded cell"),
    ],
)
def test_bad_solution_notebooks_are_refused(how, words):
    nb = break_fixture(how)
    with pytest.raises(NotebookFormatError) as info:
        validate_solution(nb, "99_fixture.ipynb")
    assert words in str(info.value)
    assert str(info.value).startswith("99_fixture.ipynb: ")
    with pytest.raises(NotebookFormatError):
        make_exercise(nb)


def test_the_fixture_is_valid():
    validate_solution(load_fixture())


# ----------------------------------------------------------------------------- directories


def test_generate_then_check_is_byte_stable(dirs):
    solutions, exercises = dirs
    first = generate_exercises(solutions, exercises)
    assert [p.name for p in first.written] == ["99_fixture.ipynb"]
    data = (exercises / "99_fixture.ipynb").read_bytes()
    second = generate_exercises(solutions, exercises)
    assert second.written == [] and [p.name for p in second.unchanged] == ["99_fixture.ipynb"]
    assert (exercises / "99_fixture.ipynb").read_bytes() == data
    assert generate_exercises(solutions, exercises, check=True).ok


def test_check_names_out_of_date_missing_and_stray_files(dirs, capsys):
    solutions, exercises = dirs
    args = ["exercises", "--solutions", str(solutions), "--exercises", str(exercises)]
    assert course_main([*args, "--check"]) == 1
    assert "missing: " in capsys.readouterr().err
    assert course_main(args) == 0
    assert course_main([*args, "--check"]) == 0
    assert "1 exercise notebook(s) up to date" in capsys.readouterr().out

    path = exercises / "99_fixture.ipynb"
    path.write_text(path.read_text().replace("YOUR CODE HERE", "my answer"))
    (exercises / "42_stray.ipynb").write_text(path.read_text())
    shutil.copy(FIXTURE, solutions / "98_other.ipynb")
    outcome = generate_exercises(solutions, exercises, check=True)
    assert [p.name for p in outcome.out_of_date] == ["99_fixture.ipynb"]
    assert [p.name for p in outcome.missing] == ["98_other.ipynb"]
    assert [p.name for p in outcome.stray] == ["42_stray.ipynb"]
    assert course_main([*args, "--check"]) == 1
    err = capsys.readouterr().err
    assert "out of date: " in err and "99_fixture.ipynb" in err
    assert "missing: " in err and "98_other.ipynb" in err
    assert "stray (no solution notebook generates it): " in err and "42_stray.ipynb" in err


def test_an_invalid_solution_fails_the_check(dirs, capsys):
    solutions, exercises = dirs
    nbformat.write(break_fixture("schema"), solutions / "97_bad.ipynb")
    args = ["exercises", "--solutions", str(solutions), "--exercises", str(exercises)]
    assert course_main(args) == 1
    err = capsys.readouterr().err
    assert "invalid solution notebook" in err and "schema_version is 1" in err
    assert not (exercises / "97_bad.ipynb").exists()


def test_exercises_up_to_date():
    """exercises/ is exactly what `python -m minivae.course exercises` writes from solutions/."""
    solutions, exercises = ROOT / "solutions", ROOT / "exercises"
    if not sorted(solutions.glob("*.ipynb")):
        pytest.skip("solutions/ has no notebooks yet")
    outcome = generate_exercises(solutions, exercises, check=True)
    assert outcome.ok, (
        "exercises/ is out of date; run `python -m minivae.course exercises`:\n"
        + "\n".join(outcome.problems())
    )
