"""The HTML pages: the bench (one card per slot, kept live by server-sent events), the run
history with filters, and each run's page (the HTML report of ``rig report``, with its timeline).

Every value from a record may come from a device, so the server escapes what it renders and the
bench page's script only ever sets ``textContent``. The Content-Security-Policy allows this
server's own script and nothing else: no inline script, nothing fetched from elsewhere.
"""

from __future__ import annotations

import asyncio
from html import escape
from importlib.resources import files

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, Response

from rig.records import RunSummary, UnknownRun
from rig.report import VERDICT_CLASS, render_html
from rig.serve.queries import RunFilter, runs
from rig.vocabulary import Method, Verdict

router = APIRouter(include_in_schema=False)
CSP = ("default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'self' "
       "'unsafe-inline'; img-src 'self'; base-uri 'none'; form-action 'self'; "
       "frame-ancestors 'none'")
REPORT_CSP = "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'"
NAV = ('<nav class="rig-nav"><a href="/">bench</a> · <a href="/runs">run history</a>'
       '{extra}</nav>')


def _asset(name: str) -> str:
    return files("rig.serve").joinpath("static", name).read_text(encoding="utf-8")


def page(title: str, body: str, csp: str = CSP) -> HTMLResponse:
    html = ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{escape(title)}</title>"
            '<link rel="stylesheet" href="/static/rig.css"></head>'
            f"<body>{body}</body></html>\n")
    return HTMLResponse(html, headers={"Content-Security-Policy": csp,
                                       "X-Content-Type-Options": "nosniff",
                                       "Referrer-Policy": "no-referrer",
                                       "Cache-Control": "no-store"})


@router.get("/static/{name}")
async def static(name: str) -> Response:
    kinds = {"rig.css": "text/css", "bench.js": "text/javascript"}
    if name not in kinds:
        raise HTTPException(404)
    return Response(_asset(name), media_type=kinds[name],
                    headers={"X-Content-Type-Options": "nosniff"})


@router.get("/", response_class=HTMLResponse)
async def bench_page(request: Request) -> HTMLResponse:
    view = request.app.state.view
    name = await asyncio.to_thread(view.bench_name)
    body = (NAV.format(extra="") +
            f'<h1>Bench <span id="bench-name">{escape(name or "(no runs yet)")}</span>'
            '<span id="live" class="live off">connecting…</span></h1>'
            + _controls() +
            '<main id="slots" class="slots"></main>'
            '<script src="/static/bench.js"></script>')
    return page(f"rig bench {name or ''}", body)


def _controls() -> str:
    """Start (method, slots) and stop: buttons the page's script wires to the API."""
    methods = "".join(f'<option value="{m.value}">{m.value}</option>' for m in Method)
    return ('<div id="controls" class="controls">'
            f'<select id="method"><option value="">bench default method</option>{methods}'
            '</select><input id="run-slots" placeholder="slots (all)" size="10">'
            '<button type="button" id="start">Start run</button>'
            '<button type="button" id="stop">Stop run</button></div>')


@router.get("/runs", response_class=HTMLResponse)
async def history_page(request: Request, verdict: str | None = None, slot: str | None = None,
                       serial: str | None = None,
                       limit: int = Query(50, ge=1, le=500)) -> HTMLResponse:
    flt = RunFilter(verdict=verdict or None, slot=slot or None, serial=serial or None,
                    limit=limit)
    found = await asyncio.to_thread(runs, request.app.state.store, flt)
    body = NAV.format(extra="") + "<h1>Run history</h1>" + _filter_form(flt) + _table(found)
    return page("rig run history", body)


def _filter_form(flt: RunFilter) -> str:
    options = ['<option value="">any verdict</option>'] + [
        f'<option value="{v.value}"{" selected" if flt.verdict == v.value else ""}>'
        f"{v.value}</option>" for v in Verdict]
    return ('<form class="filters" method="get" action="/runs">'
            f'<select name="verdict">{"".join(options)}</select>'
            f'<input name="slot" placeholder="slot" value="{escape(flt.slot or "")}" size="5">'
            f'<input name="serial" placeholder="serial or MAC" '
            f'value="{escape(flt.serial or "")}">'
            '<button type="submit">filter</button></form>')


def _table(found: list[RunSummary]) -> str:
    if not found:
        return '<p class="empty">No run matches.</p>'
    rows = []
    for s in found:
        run = s.run
        counts = " ".join(f'<span class="badge {VERDICT_CLASS.get(k, "")}">{escape(k)} {n}'
                          "</span>" for k, n in sorted(s.counts.items()))
        rows.append(f'<tr><td><a href="/runs/{run.id}">{run.id}</a></td>'
                    f"<td>{escape(run.started_at.strftime('%Y-%m-%d %H:%M:%S'))}</td>"
                    f"<td>{escape(run.bench_name)}</td><td>{escape(run.method)}</td>"
                    f"<td>{escape(run.status.value)}</td><td>{s.units}</td><td>{counts}</td>"
                    "</tr>")
    return ('<table class="runs"><thead><tr><th>run</th><th>started (UTC)</th><th>bench</th>'
            "<th>method</th><th>status</th><th>units</th><th>verdicts</th></tr></thead>"
            f"<tbody>{''.join(rows)}</tbody></table>")


@router.get("/runs/{run_id}", response_class=HTMLResponse)
async def run_page(request: Request, run_id: int) -> HTMLResponse:
    try:
        record = await asyncio.to_thread(request.app.state.store.runs.load_run, run_id)
    except UnknownRun:
        raise HTTPException(404, f"no run {run_id}") from None
    html = render_html(record)
    if any(secret in html for secret in request.app.state.secrets):
        raise HTTPException(500, "refused: the record holds a camera password")
    nav = NAV.format(extra=f' · <a href="/api/runs/{run_id}">JSON</a>')
    html = html.replace("<body>", "<body>\n" + nav, 1)
    return HTMLResponse(html, headers={"Content-Security-Policy": REPORT_CSP,
                                       "Cache-Control": "no-store"})
