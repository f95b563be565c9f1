"""``rig serve``: the bench at a glance over HTTP, read from the record store.

The records are the source of truth: every page and API answer is built from what the store
holds, so a ``rig run`` started from a terminal shows up live. The read path never writes; the
only writes are operator actions: clearing a slot (recorded with who and why), and starting a
batch, which is a ``rig run`` child process writing its own records.

- ``queries``   read-only views: the bench's slot cards, runs filtered by verdict/slot/serial
- ``live``      the change feed: polls SQLite's ``data_version`` and pushes bench snapshots
- ``security``  loopback by default, a token elsewhere, cross-site refusal for actions
- ``api``       the JSON API (OpenAPI at /api/openapi.json)
- ``control``   start a batch (a ``rig run`` child) and stop one (SIGTERM, as Ctrl-C)
- ``metrics``   /metrics for Prometheus, read from the records at each scrape
- ``server``    uvicorn, in the foreground or on a thread
- ``pages``     the HTML pages: the bench, the run history, each run's report
- ``app``       assembles them into one ASGI application
"""
