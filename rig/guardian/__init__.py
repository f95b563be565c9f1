"""The guardian: a small process that puts a rig command's outputs at rest if the command dies
without its own exit path (``kill -9``, the OOM killer, a segfault), when nothing else would.

Why a second process: a signal handler, ``finally`` and ``atexit`` all run inside the process
that died, and a USB relay board (or a Raspberry Pi kernel without ``strict_gpiod``) keeps an
output where the dead process left it. Until the next ``rig`` command (or ``ExecStopPost=``),
a solenoid would stay energised and cook.

How it works (``handle`` is the command's side, ``watch`` the guardian's):

- ``rig run``, ``rig press`` and ``rig power`` start it (``python -m rig.guardian``) before any
  output moves, in a session of its own (a Ctrl-C or SIGTERM to the command's process group
  does not reach it), and send it one JSON line on its stdin: the bench file, the record store
  and the command's pid. No secret travels: SNMP keys are read from the environment the
  guardian inherits, by the bench file's ``*_env`` names, as the command reads them.
- It loads the bench, says ``ready`` (the command refuses to move anything without it) and
  waits for end-of-file on its stdin. The command holds the only write end: any death of the
  command, whatever the signal, closes it.
- A clean exit sends ``done`` first: the guardian stops and touches nothing.
- End-of-file without ``done``: it waits until the command is really gone (its serial ports'
  exclusive locks and GPIO lines are freed with it), reads the outputs ledger of the command's
  runs (written *before* any output moves, so it is a superset of what may be engaged), puts
  each open line's output at rest by the rules ``rig safe`` uses (``rig.wiring.rest_button``,
  ``rest_power``), clears the line with the note ``GUARDIAN_NOTE``, and logs at CRITICAL, naming
  the output, whatever it could not make safe within its time bound.
"""

from rig.guardian.handle import GUARDIAN_NOTE, Guardian, GuardianError

__all__ = ["GUARDIAN_NOTE", "Guardian", "GuardianError"]
