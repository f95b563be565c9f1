"""Reading runs back: the latest runs with their counts, one whole run, one unit."""

from __future__ import annotations

from rig.records.db import Database
from rig.records.models import (
    Evidence,
    RunRecord,
    RunSummary,
    Step,
    Unit,
    evidence_from_row,
    output_from_row,
    run_from_row,
    step_from_row,
    unit_from_row,
)


class RunQueries:
    """Read-only views of the run log (``rig history``, ``rig report``, recovery)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def last_run_id(self, bench: str | None = None) -> int | None:
        """The newest run's id (of ``bench``, when given); None in an empty store."""
        rows = self.db.read("SELECT MAX(id) FROM runs WHERE ? IS NULL OR bench_name = ?",
                            (bench, bench))
        return rows[0][0]

    def history(self, limit: int = 20, bench: str | None = None) -> list[RunSummary]:
        """The latest runs, newest first, with unit counts per verdict."""
        runs = [run_from_row(r) for r in self.db.read(
            "SELECT * FROM runs WHERE ? IS NULL OR bench_name = ? ORDER BY id DESC LIMIT ?",
            (bench, bench, max(0, limit)))]
        if not runs:
            return []
        marks = ", ".join("?" * len(runs))
        counts: dict[int, dict[str, int]] = {run.id: {} for run in runs}
        for row in self.db.read(f"SELECT run_id, COALESCE(verdict, 'unfinished'), COUNT(*) "
                                f"FROM units WHERE run_id IN ({marks}) GROUP BY 1, 2",
                                [run.id for run in runs]):
            counts[row[0]][row[1]] = row[2]
        finals: dict[int, dict[str, int]] = {run.id: {} for run in runs}
        for row in self.db.read(f"SELECT run_id, final_state, COUNT(*) FROM units WHERE run_id "
                                f"IN ({marks}) AND final_state IS NOT NULL GROUP BY 1, 2",
                                [run.id for run in runs]):
            finals[row[0]][row[1]] = row[2]
        return [RunSummary(run, sum(counts[run.id].values()), counts[run.id], finals[run.id])
                for run in runs]

    def load_run(self, run_id: int) -> RunRecord:
        """A whole run, read in one consistent snapshot. Raises UnknownRun."""
        with self.db.snapshot() as conn:      # one read transaction: no half-written run
            run = run_from_row(self.db.row(conn, "run", "runs", run_id))
            units = conn.execute("SELECT * FROM units WHERE run_id = ? ORDER BY id",
                                 (run_id,)).fetchall()
            steps = conn.execute("SELECT s.* FROM steps s JOIN units u ON s.unit_id = u.id "
                                 "WHERE u.run_id = ? ORDER BY s.unit_id, s.seq",
                                 (run_id,)).fetchall()
            evidence = conn.execute("SELECT e.* FROM evidence e JOIN units u ON "
                                    "e.unit_id = u.id WHERE u.run_id = ? ORDER BY e.id",
                                    (run_id,)).fetchall()
            outputs = conn.execute("SELECT * FROM outputs WHERE run_id = ? ORDER BY id",
                                   (run_id,)).fetchall()
        by_unit_steps: dict[int, list[Step]] = {}
        for row in steps:
            by_unit_steps.setdefault(row["unit_id"], []).append(step_from_row(row))
        by_unit_evidence: dict[int, list[Evidence]] = {}
        for row in evidence:
            by_unit_evidence.setdefault(row["unit_id"], []).append(evidence_from_row(row))
        return RunRecord(run=run,
                         units=tuple(unit_from_row(r, by_unit_steps.get(r["id"], ()),
                                                   by_unit_evidence.get(r["id"], ()))
                                     for r in units),
                         outputs=tuple(output_from_row(r) for r in outputs))

    def load_unit(self, unit_id: int) -> Unit:
        """One unit with its steps and evidence."""
        with self.db.snapshot() as conn:
            row = self.db.row(conn, "unit", "units", unit_id)
            steps = [step_from_row(r) for r in conn.execute(
                "SELECT * FROM steps WHERE unit_id = ? ORDER BY seq", (unit_id,))]
            evidence = [evidence_from_row(r) for r in conn.execute(
                "SELECT * FROM evidence WHERE unit_id = ? ORDER BY id", (unit_id,))]
        return unit_from_row(row, steps, evidence)
