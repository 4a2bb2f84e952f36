"""Command line of the course machinery.

python -m minivae.course exercises [--check]      # solutions/*.ipynb -> exercises/*.ipynb
python -m minivae.course grade NOTEBOOK [--timeout 120] [--solution PATH]

Exit status of grade: 0 every graded cell passed, 1 some failed, 2 the notebook or an option is
bad (one line on stderr, no traceback). Usage errors of either command exit 2 with one line.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


class _UsageError(Exception):
    """A command-line mistake: main prints it as one line and returns 2."""


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line on stderr (no usage block) and exit status 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise _UsageError(f"{self.prog}: error: {message} (see --help)")


def _seconds(text: str) -> float:
    """--timeout: a finite number of seconds > 0 (0 or a negative number would mean no limit)."""
    from .grader import NotebookError, check_timeout

    try:
        return check_timeout(text, "--timeout")
    except NotebookError as err:
        raise argparse.ArgumentTypeError(str(err).removeprefix("--timeout ")) from None


def _exercises(args: argparse.Namespace) -> int:
    from .generate import default_dirs, display_path, generate_exercises, solution_notebooks

    solutions, exercises = default_dirs()
    solutions = Path(args.solutions) if args.solutions else solutions
    exercises = Path(args.exercises) if args.exercises else exercises
    if not solutions.is_dir():
        print(f"no solutions folder at {solutions}", file=sys.stderr)
        return 2
    if not solution_notebooks(solutions):
        print(f"no solution notebooks in {solutions}", file=sys.stderr)
    outcome = generate_exercises(solutions, exercises, check=args.check)
    for path in outcome.written:
        print(f"wrote {display_path(path)}")
    if args.check:
        for line in outcome.problems():
            print(line, file=sys.stderr)
        if outcome.ok:
            where = display_path(exercises)
            print(f"{len(outcome.unchanged)} exercise notebook(s) up to date in {where}")
            return 0
        print(
            "run `python -m minivae.course exercises` to regenerate exercises/ from solutions/",
            file=sys.stderr,
        )
        return 1
    for line in outcome.problems():
        print(line, file=sys.stderr)
    where = display_path(exercises)
    print(f"{len(outcome.written)} written, {len(outcome.unchanged)} unchanged in {where}")
    return 1 if outcome.invalid else 0


def _grade(args: argparse.Namespace) -> int:
    from .grader import main

    return main(args.notebook, timeout=args.timeout, quiet=args.quiet, solution=args.solution)


def main(argv: list[str] | None = None) -> int:
    parser = _Parser(prog="python -m minivae.course", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    ex = sub.add_parser("exercises", help="generate exercises/ from solutions/")
    ex.add_argument("--check", action="store_true", help="only check; exit 1 if out of date")
    ex.add_argument("--solutions", help="folder of solution notebooks (default: solutions/)")
    ex.add_argument("--exercises", help="folder of exercise notebooks (default: exercises/)")
    ex.set_defaults(func=_exercises)
    gr = sub.add_parser("grade", help="run a notebook and score its graded cells")
    gr.add_argument("notebook", help="e.g. exercises/01_autoencoders.ipynb")
    gr.add_argument(
        "--timeout",
        type=_seconds,
        default=120.0,
        help="seconds per cell, a number > 0 (default 120); a cell that runs longer fails",
    )
    gr.add_argument(
        "--solution",
        help="the solution notebook to compare with (default: solutions/<same name> beside the "
        "notebook's folder, or in this repository)",
    )
    gr.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    gr.set_defaults(func=_grade)
    try:
        args = parser.parse_args(argv)
    except _UsageError as err:
        print(err, file=sys.stderr)
        return 2
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
