"""The JSON API: the bench, runs, units (with steps and evidence), slots and their health, the
live event stream, and the operator actions (start and stop a run, clear a slot, pin a slot's
expected identity), each recorded with who did it: the name given and how the request got in
(``token`` or ``local``). FastAPI documents it at /api/openapi.json from these signatures and
models."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from rig.records import RecordError, RecordStore, SlotPin, UnknownRun
from rig.report import _plain, record_dict
from rig.serve.control import ControlError, RunControl
from rig.serve.live import BenchView, ChangeFeed
from rig.serve.queries import RunFilter, runs, scrub, slot_events, summary_json
from rig.vocabulary import Method

router = APIRouter(prefix="/api", tags=["bench"])
log = logging.getLogger("rig.serve")
#: Seconds between keep-alive comments on an idle event stream (proxies drop silent streams).
KEEPALIVE_S = 15.0


class ClearSlot(BaseModel):
    """Who puts the slot back in service, and why: both are recorded in its health history."""

    by: str = Field(min_length=1, max_length=100, description="the operator's name")
    why: str = Field(min_length=1, max_length=500, description="what was done to the slot")


class StartRun(BaseModel):
    """A batch on the served bench: ``rig run`` with this method and these slots."""

    by: str = Field(min_length=1, max_length=100, description="the operator's name")
    method: Method | None = Field(None, description="default: the bench file's")
    slots: list[str] | None = Field(None, description="default: every slot")


class StopRun(BaseModel):
    by: str = Field(min_length=1, max_length=100, description="the operator's name")


class PinSlot(BaseModel):
    """What a barcode scanner typed: a serial, or a MAC (12 hex digits, separators optional)."""

    code: str = Field(min_length=1, max_length=80, description="serial or MAC as scanned")
    by: str | None = Field(None, max_length=100, description="the operator's name, if given")


#: A MAC as labels print it: 12 hex digits, in pairs separated by ':' or '-', or not at all.
_MAC = re.compile(r"[0-9a-f]{2}([:-]?)[0-9a-f]{2}(?:\1[0-9a-f]{2}){4}")
#: A serial as scanned: printable, no spaces (a scanner adds none inside one).
_SERIAL = re.compile(r"[\x21-\x7e]{1,64}")


def parse_code(code: str) -> tuple[str | None, str | None]:
    """(mac, serial) for a scanned code, one of them None; ValueError if it is neither."""
    text = code.strip()
    if _MAC.fullmatch(text.lower()):
        digits = re.sub("[:-]", "", text.lower())
        return ":".join(digits[i:i + 2] for i in range(0, 12, 2)), None
    if _SERIAL.fullmatch(text):
        return None, text
    raise ValueError("not a serial or a MAC: printable characters without spaces, at most 64")


def actor(request: Request, by: str | None) -> str:
    """Who did it, as recorded: the name given and how the request got in (token or local)."""
    access = request.scope.get("state", {}).get("rig_access", "local")
    return f"{by} ({access})" if by else access


def pin_json(pin: SlotPin) -> dict[str, Any]:
    return {"id": pin.id, "slot": pin.slot, "mac": pin.mac, "serial": pin.serial,
            "pinned_by": pin.pinned_by, "pinned_at": pin.pinned_at,
            "cleared_by": pin.cleared_by, "cleared_at": pin.cleared_at,
            "used_by_run": pin.used_by_run}


def _store(request: Request) -> RecordStore:
    return request.app.state.store


def _view(request: Request) -> BenchView:
    return request.app.state.view


def _feed(request: Request) -> ChangeFeed:
    return request.app.state.feed


@router.get("/bench", summary="the bench now: one card per slot")
async def bench(request: Request) -> dict[str, Any]:
    return await asyncio.to_thread(_view(request).snapshot)


@router.get("/events", summary="server-sent events: the bench document each time it changes",
            response_class=StreamingResponse)
async def events(request: Request) -> StreamingResponse:
    feed = _feed(request)

    async def stream() -> AsyncIterator[str]:
        version = 0
        yield "retry: 1000\n\n"
        while not feed.closed and not await request.is_disconnected():
            news = await feed.newer_than(version, KEEPALIVE_S)
            if news is None:
                yield ": keep-alive\n\n"
                continue
            version, text = news
            now = json.dumps(datetime.now(UTC).isoformat(timespec="milliseconds"))
            yield (f'id: {version}\nevent: bench\n'
                   f'data: {{"server_time": {now}, "bench": {text}}}\n\n')

    return StreamingResponse(stream(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})


@router.get("/runs", summary="runs newest first, filtered by a unit's verdict, slot, serial")
async def list_runs(request: Request, verdict: str | None = None, slot: str | None = None,
                    serial: str | None = Query(None, description="serial or MAC, a substring"),
                    bench: str | None = None,
                    limit: int = Query(50, ge=1, le=500)) -> list[dict[str, Any]]:
    flt = RunFilter(verdict=verdict, slot=slot, serial=serial, bench=bench, limit=limit)
    found = await asyncio.to_thread(runs, _store(request), flt)
    return [summary_json(s) for s in found]


@router.get("/runs/{run_id}", summary="one whole run: units, steps, evidence, outputs")
async def get_run(request: Request, run_id: int) -> dict[str, Any]:
    try:
        record = await asyncio.to_thread(_store(request).runs.load_run, run_id)
    except UnknownRun:
        raise HTTPException(404, f"no run {run_id}") from None
    return checked(request, scrub(record_dict(record)))


@router.get("/units/{unit_id}", summary="one unit with its steps and evidence")
async def get_unit(request: Request, unit_id: int) -> dict[str, Any]:
    try:
        unit = await asyncio.to_thread(_store(request).runs.load_unit, unit_id)
    except RecordError:
        raise HTTPException(404, f"no unit {unit_id}") from None
    data = _plain(dataclasses.asdict(unit))     # the report's own JSON form of a record
    data["duration_s"] = unit.duration_s
    return checked(request, scrub(data))


@router.get("/slots", summary="the bench's slots: state, unit, last verdict, health")
async def list_slots(request: Request) -> dict[str, Any]:
    snap = await asyncio.to_thread(_view(request).snapshot)
    return {"bench": snap["bench"], "slots": snap["slots"]}


@router.get("/slots/{slot}/events", summary="a slot's health history, newest first")
async def get_slot_events(request: Request, slot: str) -> list[dict[str, Any]]:
    name = _bench_name(request)
    return await asyncio.to_thread(slot_events, _store(request), name, slot)


@router.post("/slots/{slot}/clear", summary="put an out-of-service slot back in service")
async def clear_slot(request: Request, slot: str, body: ClearSlot) -> dict[str, Any]:
    name = await _bench_slot(request, slot)
    status = await asyncio.to_thread(_store(request).slots.clear, name, slot,
                                     actor(request, body.by), body.why)
    _feed(request).poke()
    return {"bench": name, "slot": slot, "out_of_service": status.out_of_service,
            "reason": status.reason}


@router.post("/slots/{slot}/pin", summary="pin the identity the slot's next run expects "
             "(a scanned serial or MAC), replacing its open pin")
async def pin_slot(request: Request, slot: str, body: PinSlot) -> dict[str, Any]:
    name = await _bench_slot(request, slot)
    try:
        mac, serial = parse_code(body.code)
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from None
    pin = await asyncio.to_thread(_store(request).pins.pin, name, slot,
                                  by=actor(request, body.by), mac=mac, serial=serial)
    log.warning("slot %s: %s pinned by %s", slot, mac or serial, pin.pinned_by)
    _feed(request).poke()
    return pin_json(pin)


@router.delete("/slots/{slot}/pin", summary="clear the slot's open pin")
async def unpin_slot(request: Request, slot: str,
                     by: str | None = Query(None, max_length=100)) -> dict[str, Any]:
    name = await _bench_slot(request, slot)
    pin = await asyncio.to_thread(_store(request).pins.clear, name, slot,
                                  by=actor(request, by))
    if pin is None:
        raise HTTPException(404, f"slot {slot!r} has no open pin")
    _feed(request).poke()
    return {"slot": slot, "cleared": pin_json(pin)}


@router.get("/slots/{slot}/pins", summary="a slot's pins, newest first")
async def slot_pins(request: Request, slot: str) -> list[dict[str, Any]]:
    name = await _bench_slot(request, slot)
    return [pin_json(p) for p in await asyncio.to_thread(_store(request).pins.history, name,
                                                         slot)]


@router.post("/runs", status_code=202, summary="start a batch (rig run) on the served bench")
async def start_run(request: Request, body: StartRun) -> dict[str, Any]:
    control: RunControl = request.app.state.control
    try:
        started = await asyncio.to_thread(control.start, body.method, body.slots)
    except ControlError as exc:
        raise HTTPException(exc.status, str(exc)) from None
    who = actor(request, body.by)
    await asyncio.to_thread(_store(request).runs.annotate, started.run_id,
                            f"started from the dashboard by {who}", who)
    log.warning("run %d started by %s (pid %d)", started.run_id, who, started.pid)
    _feed(request).poke()
    return {"run_id": started.run_id, "pid": started.pid, "by": who}


@router.post("/runs/stop", status_code=202,
             summary="stop the running batch: SIGTERM, the same clean stop as Ctrl-C")
async def stop_run(request: Request, body: StopRun) -> dict[str, Any]:
    control: RunControl = request.app.state.control
    try:
        run = await asyncio.to_thread(control.stop)
    except ControlError as exc:
        raise HTTPException(exc.status, str(exc)) from None
    who = actor(request, body.by)
    await asyncio.to_thread(_store(request).runs.annotate, run.id,
                            f"stop asked from the dashboard by {who}")
    log.warning("run %d stopped by %s (pid %d)", run.id, who, run.pid)
    return {"run_id": run.id, "pid": run.pid, "by": who}


def _bench_name(request: Request) -> str:
    name = _view(request).bench_name()
    if name is None:
        raise HTTPException(404, "no bench yet: give --bench or record a run")
    return name


async def _bench_slot(request: Request, slot: str) -> str:
    """The served bench's name, once ``slot`` is known to be one of its slots (else 404)."""
    name = _bench_name(request)
    if slot not in await asyncio.to_thread(_view(request).slots, name):
        raise HTTPException(404, f"no slot {slot!r} on bench {name!r}")
    return name


def checked(request: Request, data: dict[str, Any]) -> dict[str, Any]:
    """``data`` if it holds no known camera password; a 500 otherwise. Evidence never holds
    one (the recorder stores facts, not credentials); this makes that a checked promise."""
    secrets_ = request.app.state.secrets
    if secrets_:
        text = json.dumps(data)
        if any(secret in text for secret in secrets_):
            raise HTTPException(500, "refused: the record holds a camera password")
    return data
