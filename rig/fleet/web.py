"""``rig serve --db postgresql://…``: the fleet in a browser, read from the fleet's database.

Pages: ``/`` every bench with the lag of its sync (when it was last heard from, how many log
entries it had not pushed yet then); ``/benches/{id}`` one bench's slots as last synced and its
latest runs; ``/benches/{id}/runs/{run}`` a run's report (``rig report``'s HTML); ``/api/fleet``
the benches as JSON. Read-only: nothing here moves an output or writes a record. It sits behind
the same Guard as the bench's own server (a token off loopback) and the same CSP.

One PostgreSQL connection behind a lock, reopened after a lost server: a fleet page is a
handful of indexed queries, not a load that needs a pool.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from html import escape
from typing import Any, TypeVar

import psycopg
from fastapi import APIRouter, FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse

from rig import __version__
from rig.fleet import overview, reader
from rig.records import UnknownRun
from rig.report import VERDICT_CLASS, render_html
from rig.serve.pages import CSP, REPORT_CSP, page, static
from rig.serve.security import Guard, Policy

T = TypeVar("T")
router = APIRouter(include_in_schema=False)
NAV = '<nav class="rig-nav"><a href="/">fleet</a>{extra}</nav>'


class FleetSource:
    """The fleet's database for the web handlers: one connection, one query at a time."""

    def __init__(self, conninfo: str) -> None:
        self.conninfo = conninfo
        self.lock = threading.Lock()
        self._conn: psycopg.Connection | None = None

    def call(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(conn, *args)``, reconnecting once when the server went away meanwhile."""
        with self.lock:
            for attempt in (1, 2):
                try:
                    if self._conn is None or self._conn.closed:
                        self._conn = reader.connect(self.conninfo)
                    return fn(self._conn, *args)
                except psycopg.OperationalError:
                    if self._conn is not None:
                        self._conn.close()
                    self._conn = None
                    if attempt == 2:
                        raise
            raise AssertionError("unreachable")

    def close(self) -> None:
        with self.lock:
            if self._conn is not None:
                self._conn.close()


def create_fleet_app(source: FleetSource, policy: Policy) -> Guard:
    """The fleet's pages over ``source``, guarded by ``policy``."""
    app = FastAPI(title="rig fleet", version=__version__, openapi_url="/api/openapi.json",
                  docs_url=None, redoc_url=None)
    app.state.source = source
    app.include_router(router)
    app.add_api_route("/static/{name}", static, include_in_schema=False)
    return Guard(app, policy)


async def _call(request: Request, fn: Callable[..., T], *args: Any) -> T:
    try:
        return await asyncio.to_thread(request.app.state.source.call, fn, *args)
    except psycopg.OperationalError:
        raise HTTPException(503, "the fleet's database is not reachable") from None
    except reader.NoFleet as exc:                # no fleet schema there (yet), or a newer one
        raise HTTPException(503, str(exc)) from None


@router.get("/api/fleet")
async def fleet_json(request: Request) -> list[dict[str, Any]]:
    lines = await _call(request, overview.bench_lines)
    return [{"bench_id": b.bench_id, "bench": b.bench_name, "hostname": b.hostname,
             "runs": b.runs, "units": b.units,
             "last_run_at": b.last_run_at.isoformat() if b.last_run_at else None,
             "last_contact_at": b.pushed_at.isoformat() if b.pushed_at else None,
             "seconds_since_contact": b.seconds_since_contact,
             "entries_behind": b.entries_behind} for b in lines]


@router.get("/", response_class=HTMLResponse)
async def fleet_page(request: Request) -> HTMLResponse:
    lines = await _call(request, overview.bench_lines)
    rows = "".join(
        f'<tr><td><a href="/benches/{b.bench_id}">{escape(b.bench_name or "(no runs)")}</a>'
        f"</td><td><code>{b.bench_id[:8]}</code></td><td>{escape(b.hostname)}</td>"
        f"<td>{b.runs}</td><td>{b.units}</td><td>{_when(b.last_run_at)}</td>"
        f"<td>{_age(b.seconds_since_contact)}</td><td>{b.entries_behind}</td></tr>"
        for b in lines)
    table = ('<table class="runs"><thead><tr><th>bench</th><th>id</th><th>host</th>'
             "<th>runs</th><th>units</th><th>last run (UTC)</th><th>last heard</th>"
             f"<th>entries behind</th></tr></thead><tbody>{rows}</tbody></table>"
             if lines else '<p class="empty">No bench has synced yet (rig sync).</p>')
    return page("rig fleet", NAV.format(extra="") + "<h1>Fleet</h1>" + table, CSP)


@router.get("/benches/{bench_id}", response_class=HTMLResponse)
async def bench_page(request: Request, bench_id: str) -> HTMLResponse:
    name = await _call(request, overview.known_bench, bench_id)
    if name is None:
        raise HTTPException(404, "no such bench in the fleet")
    slots = await _call(request, overview.slots, bench_id)
    runs = await _call(request, reader.history, 20, bench_id)
    body = (NAV.format(extra=f" · {escape(name)}")
            + f"<h1>Bench {escape(name)} <code>{bench_id[:8]}</code></h1>"
            + "<h2>Slots, as last synced</h2>" + _slots_table(slots)
            + "<h2>Latest runs</h2>" + _runs_table(bench_id, runs))
    return page(f"rig fleet: {name}", body, CSP)


@router.get("/benches/{bench_id}/runs/{run_id}", response_class=HTMLResponse)
async def run_page(request: Request, bench_id: str, run_id: int) -> HTMLResponse:
    if await _call(request, overview.known_bench, bench_id) is None:
        raise HTTPException(404, "no such bench in the fleet")
    try:
        record = await _call(request, reader.load_run, bench_id, run_id)
    except UnknownRun:
        raise HTTPException(404, f"no run {run_id} of that bench") from None
    nav = NAV.format(extra=f' · <a href="/benches/{bench_id}">bench</a>')
    html = render_html(record).replace("<body>", "<body>\n" + nav, 1)
    return HTMLResponse(html, headers={"Content-Security-Policy": REPORT_CSP,
                                       "Cache-Control": "no-store"})


def _slots_table(slots: list[dict[str, Any]]) -> str:
    if not slots:
        return '<p class="empty">No slot recorded yet.</p>'
    rows = []
    for s in slots:
        unit, event = s["unit"] or {}, s["event"] or {}
        verdict = unit.get("verdict") or unit.get("state") or "-"
        rows.append(f"<tr><td>{escape(s['slot'])}</td>"
                    f'<td><span class="badge {VERDICT_CLASS.get(verdict, "")}">'
                    f"{escape(verdict)}</span></td><td>{escape(unit.get('serial') or '-')}</td>"
                    f"<td>{escape(unit.get('mac') or '-')}</td><td>{unit.get('run_id', '-')}"
                    f"</td><td>{_when(unit.get('finished_at') or unit.get('started_at'))}</td>"
                    f"<td>{escape(event.get('event') or '-')} {escape(event.get('reason') or '')}"
                    "</td></tr>")
    return ('<table class="runs"><thead><tr><th>slot</th><th>last verdict</th><th>serial</th>'
            "<th>MAC</th><th>run</th><th>when (UTC)</th><th>last slot event</th></tr></thead>"
            f"<tbody>{''.join(rows)}</tbody></table>")


def _runs_table(bench_id: str, runs: list[reader.FleetRun]) -> str:
    rows = []
    for fleet_run in runs:
        s = fleet_run.summary
        counts = " ".join(f'<span class="badge {VERDICT_CLASS.get(k, "")}">{escape(k)} {n}'
                          "</span>" for k, n in sorted(s.counts.items()))
        rows.append(f'<tr><td><a href="/benches/{bench_id}/runs/{s.run.id}">{s.run.id}</a>'
                    f"</td><td>{_when(s.run.started_at)}</td><td>{escape(s.run.method)}</td>"
                    f"<td>{escape(s.run.status.value)}</td><td>{s.units}</td>"
                    f"<td>{counts}</td></tr>")
    return ('<table class="runs"><thead><tr><th>run</th><th>started (UTC)</th><th>method</th>'
            "<th>status</th><th>units</th><th>verdicts</th></tr></thead>"
            f"<tbody>{''.join(rows)}</tbody></table>")


def _when(moment: Any) -> str:
    return escape(moment.strftime("%Y-%m-%d %H:%M:%S")) if moment is not None else "-"


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "never"
    if seconds < 120:
        return f"{seconds:.0f} s ago"
    return f"{seconds / 60:.0f} min ago" if seconds < 7200 else f"{seconds / 3600:.1f} h ago"
