"""The JSON API: the bench, runs, units (with steps and evidence), slots and their health, the
live event stream, and the one operator action so far (clearing a slot). FastAPI documents it
at /api/openapi.json from these signatures and models."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from rig.records import RecordError, RecordStore, UnknownRun
from rig.report import _plain, record_dict
from rig.serve.live import BenchView, ChangeFeed
from rig.serve.queries import RunFilter, runs, scrub, slot_events, summary_json

router = APIRouter(prefix="/api", tags=["bench"])
#: Seconds between keep-alive comments on an idle event stream (proxies drop silent streams).
KEEPALIVE_S = 15.0


class ClearSlot(BaseModel):
    """Who puts the slot back in service, and why: both are recorded in its health history."""

    by: str = Field(min_length=1, max_length=100, description="the operator's name")
    why: str = Field(min_length=1, max_length=500, description="what was done to the slot")


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
    name = _bench_name(request)
    view = _view(request)
    if slot not in await asyncio.to_thread(view.slots, name):
        raise HTTPException(404, f"no slot {slot!r} on bench {name!r}")
    status = await asyncio.to_thread(_store(request).slots.clear, name, slot, body.by, body.why)
    _feed(request).poke()
    return {"bench": name, "slot": slot, "out_of_service": status.out_of_service,
            "reason": status.reason}


def _bench_name(request: Request) -> str:
    name = _view(request).bench_name()
    if name is None:
        raise HTTPException(404, "no bench yet: give --bench or record a run")
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
