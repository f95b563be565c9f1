"""Reports of one recorded run: CSV for spreadsheets, JSON for machines, HTML for people.

The HTML report is one self-contained file (inline CSS, no script, nothing fetched), so it can be
mailed, archived next to the units or opened on a bench PC without network. It shows the run's
summary, a verdict table, and per unit a timeline of its steps (CSS bars placed by start and
finish relative to the run's start; hover for times and detail) and its evidence.

Everything in a record may come from a device (a serial, a model name, an HTTP body), so every
value is escaped for HTML, and CSV cells that a spreadsheet would run as a formula are defused.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
from collections import Counter
from collections.abc import Iterable
from datetime import datetime
from html import escape
from typing import Any

from rig import report_checks
from rig.records import RunRecord, Step, Unit
from rig.vocabulary import ReportFormat, StepOutcome, choices

FORMATS = choices(ReportFormat)
#: Version of the JSON document's layout; bump when a field changes meaning or goes away.
JSON_FORMAT_VERSION = 1

CSV_COLUMNS = ("run", "slot", "verdict", "fault", "check", "reason", "mac", "serial", "profile",
               "method", "started", "finished", "duration_s", "final_state", "grade")
UNFINISHED = "unfinished"


def render(record: RunRecord, fmt: str) -> str:
    """The report in one of FORMATS."""
    if fmt == "csv":
        return render_csv(record)
    if fmt == "json":
        return render_json(record)
    if fmt == "html":
        return render_html(record)
    raise ValueError(f"unknown report format {fmt!r}; one of: {', '.join(FORMATS)}")


def verdict_counts(record: RunRecord) -> dict[str, int]:
    """Units per verdict ("unfinished" for a unit without one yet), most common first."""
    counts = Counter(u.verdict.value if u.verdict else UNFINISHED for u in record.units)
    return dict(counts.most_common())


# --- CSV ----------------------------------------------------------------------------------------

def render_csv(record: RunRecord) -> str:
    """One row per unit, with a header row (CSV_COLUMNS)."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    for unit in record.units:
        duration = unit.duration_s
        writer.writerow([
            record.run.id, _cell(unit.slot), _cell(unit.verdict or UNFINISHED),
            _cell(unit.fault or ""), _cell(unit.check or ""), _cell(unit.reason),
            _cell(unit.mac or ""), _cell(unit.serial or ""), _cell(unit.profile or ""),
            _cell(unit.method), _iso(unit.started_at), _iso(unit.finished_at),
            "" if duration is None else f"{duration:.3f}", _cell(unit.final_state or ""),
            _cell(unit.grade or "")])
    return out.getvalue()


def _cell(value: object) -> str:
    """Text for a CSV cell. A cell starting with = + - @ (or a tab/CR) is a formula to Excel and
    LibreOffice; a hostile device serial must not become one, so such cells get a leading '."""
    text = str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def _iso(moment: datetime | None) -> str:
    return "" if moment is None else moment.isoformat()


# --- JSON ---------------------------------------------------------------------------------------

def record_dict(record: RunRecord) -> dict[str, Any]:
    """The whole record as plain JSON-ready values (times as ISO 8601 text)."""
    units = []
    for unit in record.units:
        data = _plain(dataclasses.asdict(unit))
        data["duration_s"] = unit.duration_s
        units.append(data)
    return {
        "format": "rig-run", "format_version": JSON_FORMAT_VERSION,
        "run": _plain(dataclasses.asdict(record.run)),
        "counts": verdict_counts(record),
        "units": units,
        "outputs": [_plain(dataclasses.asdict(o)) for o in record.outputs],
    }


def render_json(record: RunRecord) -> str:
    return json.dumps(record_dict(record), indent=2, ensure_ascii=False) + "\n"


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, str):
        return str(value)            # StrEnum → its plain value
    return value


# --- HTML ---------------------------------------------------------------------------------------

# Class names come from these fixed tables, never from record text.
VERDICT_CLASS = {
    "factory-default": "v-pass", "provisioned": "v-pass", "handover-failed": "v-fail",
    "not-default": "v-fail", "unreachable": "v-unreach",
    "bench-fault": "v-bench", "interrupted": "v-interrupted", "skipped": "v-skipped",
    "out-of-service": "v-oos", UNFINISHED: "v-unfinished",
}
STATUS_CLASS = {"passed": "v-pass", "failed": "v-fail", "interrupted": "v-interrupted",
                "aborted": "v-bench", "running": "v-unfinished"}
OUTCOME_CLASS = {o.value: f"o-{o.value}" for o in StepOutcome}

CSS = """
:root { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #1f2328; }
body { margin: 1.5rem auto; max-width: 72rem; padding: 0 1rem; line-height: 1.4; }
h1 { font-size: 1.5rem; margin: 0 0 .5rem; } h2 { font-size: 1.15rem; margin: 1.5rem 0 .5rem; }
dl.summary { display: grid; grid-template-columns: max-content 1fr; gap: .15rem 1rem; margin: 0; }
dl.summary dt { color: #59636e; } dl.summary dd { margin: 0; word-break: break-all; }
.badge { display: inline-block; padding: .05rem .5rem; border-radius: 1rem; font-size: .85rem;
  font-weight: 600; border: 1px solid transparent; white-space: nowrap; }
.v-pass { background: #dafbe1; color: #116329; border-color: #4ac26b; }
.v-fail { background: #ffebe9; color: #a40e26; border-color: #ff8182; }
.v-unreach { background: #fff1e5; color: #953800; border-color: #fb8f44; }
.v-bench { background: #fbefff; color: #6639ba; border-color: #c297ff; }
.v-interrupted { background: #fff8c5; color: #7d4e00; border-color: #d4a72c; }
.v-skipped, .v-oos { background: #f6f8fa; color: #59636e; border-color: #d1d9e0; }
.v-unfinished { background: #ddf4ff; color: #0550ae; border-color: #54aeff; }
.counts { margin: .75rem 0; display: flex; gap: .5rem; flex-wrap: wrap; }
table { border-collapse: collapse; width: 100%; font-size: .9rem; }
th, td { text-align: left; padding: .3rem .5rem; border-bottom: 1px solid #d1d9e0;
  vertical-align: top; }
th { background: #f6f8fa; } td.mono, .mono { font-family: ui-monospace, monospace; }
tr.open-output td { background: #fff8c5; }
section.unit { border: 1px solid #d1d9e0; border-radius: .5rem; padding: .75rem 1rem;
  margin: 1rem 0; }
section.unit h2 { margin-top: 0; }
.reason { margin: .25rem 0 .75rem; }
.timeline { margin: .5rem 0; }
.tl-row { display: grid; grid-template-columns: 12rem 1fr 9rem; gap: .5rem; align-items: center;
  min-height: 1.4rem; }
.tl-label { font-size: .85rem; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
.tl-meta { font-size: .8rem; color: #59636e; white-space: nowrap; }
.tl-track { position: relative; height: 1rem; background: #f6f8fa; border-radius: .2rem; }
.tl-axis .tl-track { background: none; height: 1.1rem; border-bottom: 1px solid #d1d9e0; }
.tick { position: absolute; top: 0; font-size: .7rem; color: #59636e; transform: translateX(-50%);
  white-space: nowrap; }
.tick.first { transform: none; } .tick.last { transform: translateX(-100%); }
.step-bar { position: absolute; top: 0; bottom: 0; border-radius: .2rem; min-width: 2px; }
.o-ok { background: #2da44e; } .o-failed { background: #cf222e; }
.o-timeout { background: #e16f24; } .o-skipped { background: #afb8c1; }
.o-running { background: #218bff; }
.o-interrupted { background: repeating-linear-gradient(45deg, #d4a72c 0 4px, #fff8c5 4px 8px); }
.legend { display: flex; gap: .75rem; font-size: .8rem; color: #59636e; margin: .25rem 0; }
.legend i { display: inline-block; width: .8rem; height: .8rem; border-radius: .15rem;
  vertical-align: middle; margin-right: .25rem; }
details { margin: .25rem 0; } summary { cursor: pointer; font-size: .9rem; }
pre { background: #f6f8fa; padding: .5rem .75rem; border-radius: .3rem; overflow-x: auto;
  font-size: .8rem; margin: .25rem 0; }
.empty { color: #59636e; font-style: italic; }
"""


def _e(value: object) -> str:
    """Escape any value for HTML text and attributes; None shows as a dash."""
    return "-" if value is None else escape(str(value), quote=True)


def _when(moment: datetime | None) -> str:
    return "-" if moment is None else moment.strftime("%Y-%m-%d %H:%M:%S UTC")


def _clock(moment: datetime | None) -> str:
    return "-" if moment is None else moment.strftime("%H:%M:%S.%f")[:-3]


def format_duration(seconds: float | None) -> str:
    """A duration people read at a glance: 0.42 s, 12.3 s, 3 min 05 s, 1 h 02 min."""
    if seconds is None:
        return "-"
    if seconds < 10:
        return f"{seconds:.2f} s"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


class _Span:
    """The run's time axis: run start → run end (or the latest time recorded, for a run that
    never closed), mapped onto 0–100 % of a timeline track."""

    def __init__(self, record: RunRecord) -> None:
        self.start = record.run.started_at
        moments = [record.run.started_at, record.run.finished_at]
        for unit in record.units:
            moments += [unit.started_at, unit.finished_at]
            for step in unit.steps:
                moments += [step.started_at, step.finished_at]
            moments += [e.created_at for e in unit.evidence]
        self.end = max(m for m in moments if m is not None)
        self.seconds = max((self.end - self.start).total_seconds(), 1e-3)

    def percent(self, moment: datetime) -> float:
        offset = (moment - self.start).total_seconds() / self.seconds * 100
        return min(max(offset, 0.0), 100.0)

    def bar(self, step: Step) -> tuple[float, float]:
        """Left and width (percent) of a step's bar; a step still open runs to the axis end."""
        left = self.percent(step.started_at)
        right = self.percent(step.finished_at or self.end)
        return left, max(right - left, 0.0)


def render_html(record: RunRecord) -> str:
    """The whole report as one HTML document."""
    run = record.run
    span = _Span(record)
    title = f"rig run {run.id} — {run.bench_name}"
    parts = [
        "<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        # No script, no remote anything: the CSP makes that a promise the browser keeps.
        '<meta http-equiv="Content-Security-Policy" '
        "content=\"default-src 'none'; style-src 'unsafe-inline'; img-src data:\">",
        f"<title>{_e(title)}</title>", f"<style>{CSS}{report_checks.CSS}</style>", "</head>",
        "<body>",
    ]
    parts += _summary(record, span)
    parts += _verdict_table(record)
    parts += _outputs_table(record)
    for unit in record.units:
        parts += _unit_section(unit, span)
    parts += ["</body>", "</html>", ""]
    return "\n".join(parts)


def _badge(text: str, css: str) -> str:
    return f'<span class="badge {css}">{_e(text)}</span>'


def _summary(record: RunRecord, span: _Span) -> list[str]:
    run = record.run
    finished = run.finished_at
    duration = (finished - run.started_at).total_seconds() if finished else None
    rows = [
        ("Bench", run.bench_name), ("Bench file", run.bench_path or "-"),
        ("Bench file SHA-256", run.bench_sha256 or "-"), ("Method", run.method),
        ("Started", _when(run.started_at)),
        ("Finished", _when(finished) if finished else "not closed (last record at "
                                                     f"{_when(span.end)})"),
        ("Duration", format_duration(duration)), ("Units", str(len(record.units))),
        ("Host", f"{run.hostname} (pid {run.pid})"), ("rig", run.rig_version),
        ("Command", " ".join(run.argv) or "-"),
    ]
    if run.note:
        rows.append(("Note", run.note))
    out = ["<header>",
           f"<h1>Run {_e(run.id)} on {_e(run.bench_name)} "
           f"{_badge(run.status, STATUS_CLASS.get(run.status, 'v-unfinished'))}</h1>",
           '<dl class="summary">']
    out += [f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in rows]
    out.append("</dl>")
    out.append('<p class="counts">')
    counts = verdict_counts(record)
    out += [_badge(f"{verdict}: {n}", VERDICT_CLASS.get(verdict, "v-unfinished"))
            for verdict, n in counts.items()]
    if not counts:
        out.append('<span class="empty">no units recorded</span>')
    out += ["</p>", "</header>"]
    return out


def _verdict_table(record: RunRecord) -> list[str]:
    out = ["<section>", "<h2>Verdicts</h2>"]
    if not record.units:
        return out + ['<p class="empty">No units in this run.</p>', "</section>"]
    heads = ("Slot", "Verdict", "Final state", "Grade", "Fault", "Check", "Reason", "MAC",
             "Serial", "Profile", "Duration")
    out += ["<table>", "<thead><tr>" + "".join(f"<th>{h}</th>" for h in heads) + "</tr></thead>",
            "<tbody>"]
    for unit in record.units:
        verdict = unit.verdict.value if unit.verdict else UNFINISHED
        cells = [f'<a href="#unit-{unit.id}">{_e(unit.slot)}</a>',
                 _badge(verdict, VERDICT_CLASS.get(verdict, "v-unfinished")),
                 _e(unit.final_state),
                 report_checks.grade_badge(unit.grade.value if unit.grade else None),
                 _e(unit.fault), _e(unit.check), _e(unit.reason),
                 f'<span class="mono">{_e(unit.mac)}</span>',
                 f'<span class="mono">{_e(unit.serial)}</span>', _e(unit.profile),
                 _e(format_duration(unit.duration_s))]
        out.append('<tr class="unit-row">' + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    out += ["</tbody>", "</table>", "</section>"]
    return out


def _outputs_table(record: RunRecord) -> list[str]:
    if not record.outputs:
        return []
    out = ["<section>", "<h2>Outputs switched</h2>", "<table>",
           "<thead><tr><th>Slot</th><th>Kind</th><th>Target</th><th>Since</th>"
           "<th>Cleared</th><th>Note</th></tr></thead>", "<tbody>"]
    for o in record.outputs:
        css = ' class="open-output"' if o.cleared_at is None else ""
        cleared = _clock(o.cleared_at) if o.cleared_at else "STILL ENGAGED"
        out.append(f"<tr{css}><td>{_e(o.slot)}</td><td>{_e(o.kind)}</td><td>{_e(o.target)}</td>"
                   f"<td>{_e(_clock(o.since))}</td><td>{_e(cleared)}</td>"
                   f"<td>{_e(o.note)}</td></tr>")
    out += ["</tbody>", "</table>", "</section>"]
    return out


def _unit_section(unit: Unit, span: _Span) -> list[str]:
    verdict = unit.verdict.value if unit.verdict else UNFINISHED
    expected = " / ".join(x for x in (unit.expected_mac, unit.expected_serial) if x)
    seen = " / ".join(x for x in (unit.mac, unit.serial) if x)
    out = [f'<section class="unit" id="unit-{unit.id}">',
           f"<h2>Slot {_e(unit.slot)} {_badge(verdict, VERDICT_CLASS.get(verdict, 'v-unfinished'))}"
           "</h2>",
           f'<p class="reason">{_e(unit.reason or "no verdict recorded")}</p>',
           '<dl class="summary">',
           f"<dt>Method</dt><dd>{_e(unit.method)}</dd>",
           f"<dt>Profile</dt><dd>{_e(unit.profile)}</dd>",
           f"<dt>Expected unit</dt><dd class=\"mono\">{_e(expected or '-')}</dd>",
           f"<dt>Unit seen</dt><dd class=\"mono\">{_e(seen or '-')}</dd>",
           f"<dt>Fault</dt><dd>{_e(unit.fault)}</dd>",
           f"<dt>Failed check</dt><dd>{_e(unit.check)}</dd>",
           f"<dt>Started</dt><dd>{_e(_when(unit.started_at))}</dd>",
           f"<dt>Duration</dt><dd>{_e(format_duration(unit.duration_s))}</dd>",
           "</dl>", "<h3>Steps</h3>"]
    out += _timeline(unit, span)
    out += report_checks.checks_section(unit)
    out.append("<h3>Evidence</h3>")
    if not unit.evidence:
        out.append('<p class="empty">No evidence recorded.</p>')
    names = {s.id: s.name for s in unit.steps}
    for item in unit.evidence:
        where = f" · step {names.get(item.step_id, item.step_id)}" if item.step_id else ""
        body = json.dumps(report_checks.evidence_for_display(item.kind, item.data), indent=2,
                          ensure_ascii=False, sort_keys=True)
        out.append(f'<details class="evidence"><summary>{_e(item.kind)} · '
                   f"{_e(_clock(item.created_at))}{_e(where)}</summary>"
                   f"<pre>{_e(body)}</pre></details>")
    out.append("</section>")
    return out


def _timeline(unit: Unit, span: _Span) -> list[str]:
    if not unit.steps:
        return ['<p class="empty">No steps recorded.</p>']
    ticks = []
    for i in range(5):
        css = " first" if i == 0 else " last" if i == 4 else ""
        ticks.append(f'<span class="tick{css}" style="left:{i * 25}%">'
                     f"{_e(format_duration(span.seconds * i / 4))}</span>")
    out = ['<div class="timeline">',
           '<div class="tl-row tl-axis"><div class="tl-label">since run start</div>'
           f'<div class="tl-track">{"".join(ticks)}</div><div class="tl-meta"></div></div>']
    for step in unit.steps:
        left, width = span.bar(step)
        outcome = step.outcome.value
        duration = ((step.finished_at - step.started_at).total_seconds()
                    if step.finished_at else None)
        hover = (f"{step.name}: {outcome}; {_clock(step.started_at)} → "
                 f"{_clock(step.finished_at) if step.finished_at else 'still open'}"
                 f" ({format_duration(duration)})" + (f"\n{step.detail}" if step.detail else ""))
        out.append(
            f'<div class="tl-row"><div class="tl-label" title="{_e(step.name)}">'
            f"{_e(step.seq)}. {_e(step.name)}</div>"
            f'<div class="tl-track"><div class="step-bar {OUTCOME_CLASS.get(outcome, "o-running")}"'
            f' style="left:{left:.4f}%;width:{width:.4f}%" title="{_e(hover)}"></div></div>'
            f'<div class="tl-meta">{_e(outcome)} · {_e(format_duration(duration))}</div></div>')
    out.append("</div>")
    out += _legend(s.outcome.value for s in unit.steps)
    return out


def _legend(outcomes: Iterable[str]) -> list[str]:
    seen = dict.fromkeys(outcomes)
    items = "".join(f'<span><i class="{OUTCOME_CLASS.get(o, "o-running")}"></i>{_e(o)}</span>'
                    for o in seen)
    return [f'<div class="legend">{items}</div>']
