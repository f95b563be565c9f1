"""Subcommands of the rig CLI, one module each (see rig.cli.COMMANDS).

The rule that keeps ``rig --help`` fast: **register() imports nothing heavy; the run function
does.** rig.cli imports every module listed here and calls its ``register(sub)`` to build the
parser, for every command line, ``--help`` included. So a command module imports at its top only
the standard library, rig.vocabulary and other light command modules; what the command needs to
run (the bench file, drivers, records, the runner, the simulator, HTTP, SNMP, the web server)
is imported inside the function that runs it (or a helper that function calls), and named for
annotations under ``if TYPE_CHECKING:``. A choice list or default the parser needs comes from
rig.vocabulary or a constant in the command module, never from the heavy module that owns it
(a test keeps such copies equal to their originals). tests/test_cli_startup.py enforces the rule
for every module in COMMANDS; benchmarks/startup.py measures what it buys.
"""
