"""``rig serve``: the bench at a glance over HTTP, read from the record store.

The records are the source of truth: every page and API answer is built from what the store
holds, so a ``rig run`` started from a terminal shows up live. The read path never writes; the
only writes are operator actions (clearing a slot), each recorded with who and why.

- ``queries``   read-only views: the bench's slot cards, runs filtered by verdict/slot/serial
- ``live``      the change feed: polls SQLite's ``data_version`` and pushes bench snapshots
- ``security``  loopback by default, a token elsewhere, cross-site refusal for actions
- ``api``       the JSON API (OpenAPI at /api/openapi.json)
- ``pages``     the HTML pages: the bench, the run history, each run's report
- ``app``       assembles them into one ASGI application
"""
