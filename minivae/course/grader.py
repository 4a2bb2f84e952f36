"""The self-study grader: run a notebook top to bottom and score its graded test cells.

    python -m minivae.course grade exercises/01_autoencoders.ipynb [--timeout 120]

The notebook runs in a fresh kernel of the current Python environment (the one that runs the
grader), in the notebook's own folder, with nbclient. An exception in a cell does not stop the
run; a cell that runs longer than ``timeout`` seconds (an endless loop) is interrupted and fails,
and the run goes on. Each graded test cell (``metadata.nbgrader.grade`` true) earns its points
if it runs without an error, as in nbgrader's autograder. The notebook file is not modified.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nbformat
from jupyter_client.kernelspec import KernelSpec, KernelSpecManager
from jupyter_client.manager import AsyncKernelManager
from nbclient import NotebookClient
from nbclient.exceptions import CellTimeoutError, DeadKernelError

CURRENT_ENV_KERNEL = "minivae-current-env"


class _CurrentEnvKernelSpecManager(KernelSpecManager):
    """Kernel specs that always start ipykernel with this very Python (sys.executable)."""

    def get_kernel_spec(self, kernel_name: str) -> KernelSpec:
        return KernelSpec(
            argv=[sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
            display_name=f"Python ({sys.executable})",
            language="python",
            resource_dir="",
        )


@dataclass
class CellResult:
    """The outcome of one graded test cell."""

    grade_id: str
    index: int
    points: float
    earned: float
    passed: bool
    message: str = ""
    seconds: float = 0.0


@dataclass
class GradeReport:
    """The score of a notebook: one CellResult per graded cell, plus what else went wrong."""

    path: Path
    results: list[CellResult] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # ungraded cells that failed
    seconds: float = 0.0

    @property
    def points(self) -> float:
        return sum(r.points for r in self.results)

    @property
    def earned(self) -> float:
        return sum(r.earned for r in self.results)

    @property
    def all_passed(self) -> bool:
        return bool(self.results) and all(r.passed for r in self.results)

    def by_id(self) -> dict[str, CellResult]:
        return {r.grade_id: r for r in self.results}

    def table(self) -> str:
        """The score table: one line per graded cell, then the total."""
        width = max([len(r.grade_id) for r in self.results] + [len("total")])
        lines = [f"{self.path}"]
        for r in self.results:
            line = (
                f"  {r.grade_id:<{width}}  {_pts(r.earned):>4} / {_pts(r.points):<4} "
                f"{'PASS' if r.passed else 'FAIL'}"
            )
            if not r.passed and r.message:
                line += f"  {r.message}"
            lines.append(line)
        lines.append("  " + "-" * (width + 18))
        lines.append(
            f"  {'total':<{width}}  {_pts(self.earned):>4} / {_pts(self.points):<4} "
            f"({sum(r.passed for r in self.results)} of {len(self.results)} graded cells passed, "
            f"{self.seconds:.0f} s)"
        )
        for error in self.errors:
            lines.append(f"  note: {error}")
        return "\n".join(lines)


def _pts(x: float) -> str:
    return f"{x:g}"


def _first_line(text: str, limit: int = 300) -> str:
    for line in str(text).splitlines():
        if line.strip():
            line = line.strip()
            return line if len(line) <= limit else line[: limit - 3] + "..."
    return ""


def _error_of(cell: Any) -> dict[str, Any] | None:
    for output in cell.get("outputs", []):
        if output.get("output_type") == "error":
            return output
    return None


def _message(error: dict[str, Any], timeout: float, failed_before: list[tuple[str, str]]) -> str:
    """The learner-facing first line for a cell that raised."""
    ename, evalue = error.get("ename", "Error"), _first_line(error.get("evalue", ""))
    if ename in ("KeyboardInterrupt", "CellTimeoutError"):
        return f"timed out: ran longer than {timeout:g} s and was stopped (an endless loop?)"
    if ename == "NotImplementedError":
        return "not done yet: replace `raise NotImplementedError()` with your code"
    if ename in ("ExerciseError", "AssertionError") and evalue:
        return evalue
    text = f"{ename}: {evalue}" if evalue else ename
    if ename == "NameError" and failed_before:
        label, earlier = failed_before[-1]
        if earlier == "NotImplementedError":
            return f"not done yet: finish {label} above first ({text})"
        text += f" (an earlier cell failed: {label})"
    return text


def grade_notebook(
    path: str | Path,
    timeout: float = 120,
    *,
    startup_timeout: float = 120,
    progress: Callable[[str], None] | None = None,
) -> GradeReport:
    """Run the notebook at ``path`` and score its graded test cells.

    ``timeout`` is the limit in seconds for each cell. ``progress`` (e.g. a function printing to
    stderr) receives one line per cell as the run goes. Returns a :class:`GradeReport`.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no notebook at {path}")
    nb = nbformat.read(path, as_version=4)
    report = GradeReport(path=path)
    start = time.monotonic()
    km = AsyncKernelManager(
        kernel_name=CURRENT_ENV_KERNEL, kernel_spec_manager=_CurrentEnvKernelSpecManager()
    )
    client = NotebookClient(
        nb,
        km=km,
        timeout=timeout,
        startup_timeout=startup_timeout,
        allow_errors=True,
        interrupt_on_timeout=True,
        error_on_timeout={
            "ename": "CellTimeoutError",
            "evalue": f"the cell ran longer than {timeout:g} s and was interrupted",
            "traceback": [],
        },
        record_timing=False,
        resources={"metadata": {"path": str(path.parent.resolve())}},
    )
    failed_before: list[tuple[str, str]] = []
    dead: str | None = None
    code_cells = [i for i, c in enumerate(nb.cells) if c.cell_type == "code"]
    with client.setup_kernel(stderr=subprocess.DEVNULL):
        for n, index in enumerate(code_cells, start=1):
            cell = nb.cells[index]
            meta = cell.get("metadata", {}).get("nbgrader", {})
            label = meta.get("grade_id") or f"cell {index}"
            graded = bool(meta.get("grade"))
            points = float(meta.get("points", 0) or 0)
            if dead is not None:
                if graded:
                    report.results.append(
                        CellResult(label, index, points, 0.0, False, f"not run: {dead}")
                    )
                continue
            if progress:
                progress(f"[{n}/{len(code_cells)}] {label}")
            t0 = time.monotonic()
            error: dict[str, Any] | None
            try:
                client.execute_cell(cell, index)
                error = _error_of(cell)
            except CellTimeoutError:
                error = {"ename": "CellTimeoutError", "evalue": ""}
            except DeadKernelError:
                dead = f"the Python kernel died in {label} (out of memory?)"
                error = {"ename": "DeadKernelError", "evalue": dead}
            seconds = time.monotonic() - t0
            if error is not None and error.get("ename") == "KeyboardInterrupt":
                # A timed-out cell: nbclient interrupted the kernel; make it plain.
                error = {"ename": "CellTimeoutError", "evalue": ""}
            if graded:
                ok = error is None
                message = "" if ok else _message(error, timeout, failed_before)
                report.results.append(
                    CellResult(label, index, points, points if ok else 0.0, ok, message, seconds)
                )
                if progress:
                    progress(f"    {'PASS' if ok else 'FAIL'} {message}".rstrip())
            elif error is not None and "raises-exception" in cell.metadata.get("tags", []):
                error = None  # the cell is meant to raise (tag raises-exception)
            elif error is not None:
                report.errors.append(f"{label}: {_message(error, timeout, failed_before)}")
                if progress:
                    progress(f"    error: {_message(error, timeout, failed_before)}")
            if error is not None:
                failed_before.append((label, str(error.get("ename"))))
    report.seconds = time.monotonic() - start
    return report


def main(path: str, timeout: float = 120, quiet: bool = False) -> int:
    """Grade one notebook, print the table; 0 if every graded cell passed, 1 if not, 2 if none."""

    def progress(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    report = grade_notebook(path, timeout=timeout, progress=None if quiet else progress)
    print(report.table())
    if not report.results:
        print(f"{path}: no graded test cells found (metadata.nbgrader.grade true)")
        return 2
    return 0 if report.all_passed else 1
