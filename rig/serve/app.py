"""One ASGI application: the pages, the JSON API and the change feed, behind the Guard.

FastAPI (on Starlette) because it documents the API as OpenAPI from the handlers' signatures at
no cost; its interactive /docs page is off, since it loads Swagger UI from a CDN and a bench PC
may have no Internet (and the CSP forbids it). uvicorn serves it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterable

from fastapi import FastAPI, Response
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.types import ASGIApp, Receive, Scope, Send

from rig import __version__
from rig.bench import Bench
from rig.records import RecordStore
from rig.serve import api, metrics, pages
from rig.serve.control import RunControl
from rig.serve.live import POLL_INTERVAL, BenchView, ChangeFeed
from rig.serve.security import Guard, Policy


class RigApp:
    """The guarded application, and the way to end its event streams when the server stops."""

    def __init__(self, app: ASGIApp, feed: ChangeFeed) -> None:
        self.app = app
        self.feed = feed

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)

    async def close_streams(self) -> None:
        await self.feed.close()


def create_app(store: RecordStore, policy: Policy, bench: Bench | None = None,
               secrets: Iterable[str] = (), poll_interval: float = POLL_INTERVAL) -> RigApp:
    """The application over ``store`` (the server's own connection: reads, and operator
    actions). ``secrets`` are values that must never reach a browser (the camera password);
    any answer that would contain one is refused."""
    view = BenchView(store, bench)
    feed = ChangeFeed(view, interval=poll_interval)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        task = asyncio.create_task(feed.run(), name="rig-change-feed")
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    app = FastAPI(title="rig bench", version=__version__, lifespan=lifespan,
                  openapi_url="/api/openapi.json", docs_url=None, redoc_url=None,
                  description="The bench at a glance: runs, units, steps, evidence, slots and "
                              "their health, read from the record store.")
    app.state.store, app.state.view, app.state.feed = store, view, feed
    app.state.control = RunControl(store, bench)
    app.state.secrets = tuple(s for s in secrets if s)
    app.include_router(api.router)
    app.include_router(pages.router)

    @app.get("/metrics", include_in_schema=False)
    async def prometheus() -> Response:
        body = await asyncio.to_thread(metrics.render, store)
        return Response(body, media_type=CONTENT_TYPE_LATEST)

    return RigApp(Guard(app, policy), feed)
