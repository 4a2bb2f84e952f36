"""The self-study grader: run a notebook top to bottom and score its graded test cells.

    python -m minivae.course grade exercises/01_autoencoders.ipynb [--timeout 120]

The notebook runs in a fresh kernel of the current Python environment (the one that runs the
grader), in the notebook's own folder. The notebook file is not modified. What counts:

- A graded test cell (``metadata.nbgrader.grade`` true) earns its points only when the kernel's
  *execute reply* for it says ``status: ok``. The reply is the kernel's own verdict on the cell;
  the error outputs are not read, so a cell that hides its tracebacks (``set_custom_exc``, a
  cleared output) still fails.
- The problem set's solution (``solutions/NN_name.ipynb``, found beside ``exercises/`` or in this
  repository, or given with ``solution=``) is the reference, as the source notebook is for
  nbgrader: its graded cells and their points are what is scored, so a graded cell that was
  deleted (or turned into markdown) counts as failed; a locked cell that was edited runs as
  released; points come from the reference, not from the learner's metadata.
- A cell that runs longer than ``timeout`` seconds is interrupted and fails; the run goes on.
  If the kernel does not answer the interrupt within ``interrupt_grace`` seconds (a loop that
  catches ``KeyboardInterrupt``), the run is stopped: that cell and every graded cell after it
  count as failed ("not run"), never as passed.
- A kernel that dies stops the run the same way; the report names the cell it died in and what
  the operating system says about the kernel process (exit status or signal).

Bad input (no such file, a folder, not JSON, not a notebook, a bad timeout) raises
:class:`NotebookError` with a one-line message; a kernel that does not start raises
:class:`KernelStartError`. ``main`` turns either into exit status 2.
"""

from __future__ import annotations

import json
import math
import queue
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nbformat
from jupyter_client.kernelspec import KernelSpec, KernelSpecManager
from jupyter_client.manager import KernelManager

from .generate import NotebookFormatError, make_exercise

CURRENT_ENV_KERNEL = "minivae-current-env"
REPO_ROOT = Path(__file__).resolve().parents[2]


class NotebookError(ValueError):
    """The notebook (or an option) cannot be graded: the message is one line for the learner."""


class KernelStartError(RuntimeError):
    """The Python kernel did not start (an environment problem, not the learner's)."""


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
    """The outcome of one graded test cell (index -1: the cell is missing from the notebook)."""

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
    notes: list[str] = field(default_factory=list)  # what the grader changed or could not check
    solution: Path | None = None  # the reference notebook, if one was found
    stopped: str | None = None  # why the run stopped early (a dead or unresponsive kernel)
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
        """The score table: one line per graded cell, then the total and the notes."""
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
        if self.stopped:
            lines.append(f"  run stopped: {self.stopped}")
        for error in self.errors:
            lines.append(f"  note: {error}")
        for note in self.notes:
            lines.append(f"  note: {note}")
        return "\n".join(lines)


def _pts(x: float) -> str:
    return f"{x:g}"


def _first_line(text: str, limit: int = 300) -> str:
    for line in str(text).splitlines():
        if line.strip():
            line = line.strip()
            return line if len(line) <= limit else line[: limit - 3] + "..."
    return ""


def _message(error: dict[str, Any], timeout: float, failed_before: list[tuple[str, str]]) -> str:
    """The learner-facing first line for a cell whose execute reply was not ok."""
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


# ----------------------------------------------------------------------------- input


def check_timeout(timeout: Any, name: str = "timeout") -> float:
    """``timeout`` as a float: a finite number of seconds > 0, else NotebookError."""
    try:
        seconds = float(timeout)
    except (TypeError, ValueError):
        raise NotebookError(
            f"{name} must be a positive number of seconds, got {timeout!r}"
        ) from None
    if not math.isfinite(seconds) or seconds <= 0:
        raise NotebookError(f"{name} must be a positive number of seconds, got {timeout!r}")
    return seconds


def read_notebook(path: str | Path, what: str = "notebook") -> Any:
    """Read a notebook file; NotebookError with one line if it is missing, a folder, not JSON
    or not a Jupyter notebook."""
    path = Path(path)
    if not path.exists():
        raise NotebookError(f"no {what} at {path}")
    if path.is_dir():
        raise NotebookError(f"{path} is a folder, not a {what} file (.ipynb)")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise NotebookError(f"{path} is not a Jupyter notebook: not UTF-8 text") from None
    except OSError as err:
        raise NotebookError(f"cannot read {path}: {err.strerror or err}") from None
    if not text.strip():
        raise NotebookError(f"{path} is not a Jupyter notebook: the file is empty")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise NotebookError(
            f"{path} is not a Jupyter notebook: not valid JSON "
            f"({err.msg} at line {err.lineno}, column {err.colno})"
        ) from None
    if not isinstance(data, dict) or not isinstance(data.get("cells"), list):
        raise NotebookError(
            f"{path} is not a Jupyter notebook: JSON without a list of cells "
            f"(got {type(data).__name__}"
            + (f" with keys {sorted(data)[:6]}" if isinstance(data, dict) else "")
            + ")"
        )
    try:
        nb = nbformat.reads(text, as_version=4)
        nbformat.validate(nb)
    except Exception as err:  # nbformat raises jsonschema's ValidationError and others
        raise NotebookError(
            f"{path} is not a valid Jupyter notebook: {_first_line(str(err), 200)}"
        ) from None
    return nb


def find_solution(path: str | Path) -> Path | None:
    """The solution notebook with the same file name as ``path``: in ``solutions/`` beside the
    notebook's folder (``exercises/../solutions``), in the current directory's ``solutions/``,
    or in this repository's ``solutions/``. None if there is none."""
    path = Path(path)
    candidates = [
        path.resolve().parent.parent / "solutions" / path.name,
        Path.cwd() / "solutions" / path.name,
        REPO_ROOT / "solutions" / path.name,
    ]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    return None


def _nbgrader(cell: Any) -> dict[str, Any]:
    return dict(cell.get("metadata", {}).get("nbgrader", {}) or {})


@dataclass
class _Reference:
    """What the solution notebook fixes: graded cells (in order) with their points, and the
    released source of every locked code cell (and the solution's own, hidden tests included)."""

    graded: dict[str, float]
    released: dict[str, str]
    original: dict[str, str]


def _reference(solution_path: Path) -> _Reference:
    solution = read_notebook(solution_path, "solution notebook")
    try:
        released = make_exercise(solution, str(solution_path))
    except (NotebookFormatError, ValueError) as err:
        raise NotebookError(
            f"{solution_path} is not a valid solution notebook: {_first_line(str(err), 200)}"
        ) from None
    graded: dict[str, float] = {}
    locked: dict[str, str] = {}
    original: dict[str, str] = {}
    for cell, student_cell in zip(solution.cells, released.cells, strict=True):
        meta = _nbgrader(cell)
        grade_id = meta.get("grade_id")
        if cell.cell_type != "code" or not grade_id:
            continue
        if meta.get("grade"):
            graded[grade_id] = float(meta.get("points", 0) or 0)
        if meta.get("locked") or meta.get("grade"):
            locked[grade_id] = student_cell.source
            original[grade_id] = cell.source
    return _Reference(graded, locked, original)


# ----------------------------------------------------------------------------- the kernel


def _describe_exit(km: KernelManager) -> str:
    """What the OS says about the dead kernel process: its exit status or the signal."""
    process = getattr(getattr(km, "provisioner", None), "process", None)
    code = process.poll() if process is not None else None
    if code is None:
        return "its exit status is unknown"
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        if -code == getattr(signal, "SIGKILL", 9):
            return (
                f"it was killed by {name} (the system's out-of-memory killer sends this "
                "when memory runs out, as does `kill -9`)"
            )
        if -code == getattr(signal, "SIGSEGV", 11):
            return f"it crashed with {name} (a segmentation fault in compiled code)"
        return f"it was stopped by {name}"
    return f"it exited with status {code} (os._exit or a crash in compiled code?)"


class _Kernel:
    """A kernel of this Python, driven one cell at a time through its execute replies."""

    def __init__(self, cwd: Path, startup_timeout: float) -> None:
        self.km = KernelManager(
            kernel_name=CURRENT_ENV_KERNEL, kernel_spec_manager=_CurrentEnvKernelSpecManager()
        )
        try:
            self.km.start_kernel(cwd=str(cwd), stderr=subprocess.DEVNULL)
            self.kc = self.km.client()
            self.kc.start_channels()
            self.kc.wait_for_ready(timeout=startup_timeout)
        except Exception as err:
            self.shutdown()
            raise KernelStartError(
                f"the Python kernel ({sys.executable} -m ipykernel) did not start: "
                f"{_first_line(str(err), 200)}"
            ) from None

    def execute(self, source: str) -> str:
        return self.kc.execute(source, store_history=True, allow_stdin=False, stop_on_error=False)

    def wait(self, msg_id: str, seconds: float) -> tuple[str, dict[str, Any]]:
        """("reply", content) | ("dead", {}) | ("timeout", {}) within ``seconds``."""
        deadline = time.monotonic() + seconds
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return "timeout", {}
            try:
                msg = self.kc.get_shell_msg(timeout=min(1.0, remaining))
            except queue.Empty:
                if not self.km.is_alive():
                    return "dead", {}
                continue
            if (
                msg.get("parent_header", {}).get("msg_id") == msg_id
                and msg.get("msg_type") == "execute_reply"
            ):
                self._drain_iopub()
                return "reply", dict(msg.get("content", {}))

    def _drain_iopub(self) -> None:
        # Outputs are not graded; read them so they do not pile up in the client.
        try:
            while True:
                self.kc.get_iopub_msg(timeout=0)
        except queue.Empty:
            pass

    def interrupt(self) -> None:
        self.km.interrupt_kernel()

    def is_alive(self) -> bool:
        return bool(self.km.is_alive())

    def shutdown(self) -> None:
        kc = getattr(self, "kc", None)
        if kc is not None:
            kc.stop_channels()
        try:
            if self.km.has_kernel:
                self.km.shutdown_kernel(now=True)
        except Exception:  # already gone: nothing to clean up
            pass


# ----------------------------------------------------------------------------- grading


def grade_notebook(
    path: str | Path,
    timeout: float = 120,
    *,
    solution: str | Path | None = None,
    find: bool = True,
    interrupt_grace: float = 10,
    startup_timeout: float = 120,
    progress: Callable[[str], None] | None = None,
) -> GradeReport:
    """Run the notebook at ``path`` and score its graded test cells against the reference.

    ``timeout``: the limit in seconds for each cell (> 0). ``solution``: the reference solution
    notebook; if None and ``find``, :func:`find_solution` looks for it (without one, the
    learner's own graded cells are scored and a note says that deleted ones cannot be noticed).
    ``interrupt_grace``: seconds a timed-out cell has to stop after the interrupt before the
    run is stopped. ``progress`` (e.g. a function printing to stderr) receives one line per cell
    as the run goes. Returns a :class:`GradeReport`; raises :class:`NotebookError` for bad
    input and :class:`KernelStartError` when no kernel starts.
    """
    path = Path(path)
    timeout = check_timeout(timeout)
    interrupt_grace = check_timeout(interrupt_grace, "interrupt_grace")
    nb = read_notebook(path)
    report = GradeReport(path=path)
    solution_path = Path(solution) if solution is not None else None
    if solution_path is None and find:
        solution_path = find_solution(path)
    reference = _reference(solution_path) if solution_path is not None else None
    report.solution = solution_path
    if reference is None:
        report.notes.append(
            f"no solution notebook named {path.name} found (solutions/ beside the notebook's "
            "folder, or --solution PATH): graded cells that were deleted cannot be noticed"
        )

    # The cells to run, with the reference's verdict on what is graded and what is locked.
    plan: list[tuple[int, Any, str, bool, float, str]] = []  # index, cell, label, graded,
    # points, the source to run
    seen_graded: set[str] = set()
    for index, cell in enumerate(nb.cells):
        meta = _nbgrader(cell)
        grade_id = meta.get("grade_id")
        if cell.cell_type != "code":
            continue
        label = grade_id or f"cell {index}"
        source = cell.source
        if reference is not None:
            graded = grade_id in reference.graded
            points = reference.graded.get(grade_id, 0.0)
            if grade_id in reference.released and source not in (
                reference.released[grade_id],
                reference.original[grade_id],
            ):
                # Like nbgrader's OverwriteCells: a locked cell runs as it was released.
                source = reference.released[grade_id]
                report.notes.append(
                    f"{label}: this locked cell was changed; it ran as released instead"
                )
            if meta.get("grade") and not graded:
                report.notes.append(
                    f"{label}: not a graded cell of {solution_path.name}; not scored"
                )
        else:
            graded = bool(meta.get("grade"))
            points = float(meta.get("points", 0) or 0)
        if graded and grade_id in seen_graded:
            report.notes.append(f"{label}: appears more than once; every copy must pass")
        if graded:
            seen_graded.add(grade_id)
        plan.append((index, cell, label, graded, points, source))

    results: dict[str, CellResult] = {}

    def record(result: CellResult) -> None:
        earlier = results.get(result.grade_id)
        if earlier is None or (earlier.passed and not result.passed):
            results[result.grade_id] = result

    failed_before: list[tuple[str, str]] = []
    stopped_at: str | None = None
    start = time.monotonic()
    kernel = _Kernel(path.parent.resolve(), startup_timeout)
    try:
        for n, (index, cell, label, graded, points, source) in enumerate(plan, start=1):
            if stopped_at is not None:
                if graded:
                    message = f"not run: the run stopped at {stopped_at}"
                    record(CellResult(label, index, points, 0.0, False, message))
                continue
            if not source.strip():
                if graded:  # an emptied test cell tests nothing
                    record(CellResult(label, index, points, 0.0, False, "the test cell is empty"))
                continue
            if progress:
                progress(f"[{n}/{len(plan)}] {label}")
            t0 = time.monotonic()
            msg_id = kernel.execute(source)
            state, reply = kernel.wait(msg_id, timeout)
            error: dict[str, Any] | None = None
            message = ""
            if state == "timeout":
                kernel.interrupt()
                state, reply = kernel.wait(msg_id, interrupt_grace)
                if state == "reply":
                    # It stopped when interrupted (or caught the interrupt and finished):
                    # either way it ran past the limit.
                    error = {"ename": "CellTimeoutError"}
                elif state == "timeout":
                    # The kernel is still busy in this cell: every later cell would only queue
                    # behind it, so the run stops here.
                    message = (
                        f"timed out: ran longer than {timeout:g} s and did not stop when "
                        f"interrupted (does it catch KeyboardInterrupt, e.g. a bare `except:` "
                        f"in a loop?)"
                    )
                    error = {"ename": "Unresponsive"}
                    stopped_at = label
                    report.stopped = f"{label} {message.removeprefix('timed out: ')}"
            if state == "dead":
                how = _describe_exit(kernel.km)
                message = f"the Python kernel died in this cell: {how}"
                error = {"ename": "DeadKernel"}
                stopped_at = label
                report.stopped = f"the Python kernel died in {label}: {how}"
            elif state == "reply" and error is None and reply.get("status") != "ok":
                error = (
                    reply
                    if reply.get("status") == "error"
                    else {"ename": f"the kernel answered status {reply.get('status')!r}"}
                )
            seconds = time.monotonic() - t0
            if error is not None and not message:
                message = _message(error, timeout, failed_before)
            if graded:
                ok = error is None
                record(
                    CellResult(label, index, points, points if ok else 0.0, ok, message, seconds)
                )
                if progress:
                    progress(f"    {'PASS' if ok else 'FAIL'} {message}".rstrip())
            elif stopped_at is not None:
                if progress:  # the table's "run stopped" line says why
                    progress(f"    error: {message}")
            elif error is not None and "raises-exception" in cell.metadata.get("tags", []):
                error = None  # the cell is meant to raise (tag raises-exception)
            elif error is not None:
                report.errors.append(f"{label}: {message}")
                if progress:
                    progress(f"    error: {message}")
            if error is not None:
                failed_before.append((label, str(error.get("ename"))))
    finally:
        kernel.shutdown()

    if reference is not None:
        where = _display(solution_path)
        for grade_id, points in reference.graded.items():
            if grade_id not in results:
                results[grade_id] = CellResult(
                    grade_id,
                    -1,
                    points,
                    0.0,
                    False,
                    f"missing: this graded cell is not in your notebook (deleted, or no longer "
                    f"a code cell); copy it back from {where}",
                )
        order = list(reference.graded)
        report.results = [results[g] for g in order]
    else:
        report.results = list(results.values())
    report.seconds = time.monotonic() - start
    return report


def _display(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def main(
    path: str,
    timeout: float = 120,
    quiet: bool = False,
    solution: str | None = None,
) -> int:
    """Grade one notebook and print the table: 0 if every graded cell passed, 1 if not,
    2 if the notebook or an option is bad (one line on stderr)."""

    def progress(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    try:
        report = grade_notebook(
            path, timeout=timeout, solution=solution, progress=None if quiet else progress
        )
    except (NotebookError, KernelStartError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if not report.results:
        print(
            f"error: {path} has no graded test cells (metadata.nbgrader.grade true)",
            file=sys.stderr,
        )
        return 2
    print(report.table())
    return 0 if report.all_passed else 1
