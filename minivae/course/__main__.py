"""Command line of the course machinery.

python -m minivae.course exercises [--check]      # solutions/*.ipynb -> exercises/*.ipynb
python -m minivae.course grade NOTEBOOK [--timeout 120]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


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

    if not Path(args.notebook).is_file():
        print(f"no notebook at {args.notebook}", file=sys.stderr)
        return 2
    return main(args.notebook, timeout=args.timeout, quiet=args.quiet)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m minivae.course", description=__doc__.split("\n")[0]
    )
    sub = parser.add_subparsers(dest="command", required=True)
    ex = sub.add_parser("exercises", help="generate exercises/ from solutions/")
    ex.add_argument("--check", action="store_true", help="only check; exit 1 if out of date")
    ex.add_argument("--solutions", help="folder of solution notebooks (default: solutions/)")
    ex.add_argument("--exercises", help="folder of exercise notebooks (default: exercises/)")
    ex.set_defaults(func=_exercises)
    gr = sub.add_parser("grade", help="run a notebook and score its graded cells")
    gr.add_argument("notebook", help="e.g. exercises/01_autoencoders.ipynb")
    gr.add_argument("--timeout", type=float, default=120, help="seconds per cell (default 120)")
    gr.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    gr.set_defaults(func=_grade)
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
