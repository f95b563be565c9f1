"""The fleet: many benches, one record in a shared PostgreSQL.

Each bench keeps its own SQLite record store as the source of truth (it works alone when the
network or the central server is down); ``rig sync`` pushes what it records to PostgreSQL, keyed
by (bench id, local id) so that nothing from two benches collides and nothing replayed counts
twice; the fleet's readers (``rig history --db postgresql://…``) read it back.

- ``pg_schema``  the PostgreSQL schema, created and migrated by rig (versioned, like SQLite's)
- ``target``     where the server is: the URL from an environment variable or a libpq service,
                 and how to print it without its password
- ``pusher``     one batch at a time from the bench's sync log to PostgreSQL, and the worker loop
                 with its bounded back-off
- ``reader``     the fleet's runs, read back for ``rig history``

psycopg (3) is imported by these modules only, never by a command's parser.
"""
