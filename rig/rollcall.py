"""Learning which unit is in a slot when the bench file does not say: a roll call.

Two ways, both bench-wide one-at-a-time where it matters:
- before the reset, ``roll_call``: cut the slot's power and see which unit goes quiet (a step
  of its own, under the bench's roll-call lock so two slots never blur each other's answer);
- after power-on, ``adopt_newcomer``: the one unit that appears and belongs to no other slot.
"""

from __future__ import annotations

import time

from rig.camera.sadp import SadpDevice
from rig.context import SlotContext, Unit
from rig.recorder import Recorder
from rig.vocabulary import EvidenceKind

#: Census rounds taken on each side of the power cut: a unit is "there" if either round saw
#: it, "gone" only if neither did (one lost datagram must not name the wrong unit).
ROUNDS = 2


def roll_call(ctx: SlotContext, rec: Recorder) -> Unit:
    """Cut the slot's power and return the unit that went quiet, if exactly one did (the
    power stays off: the reset goes on from there)."""
    with rec.step("roll call", f"{ctx.hands.power_target} off: which unit goes quiet?") \
            as step_id:
        with ctx.limits.roll_call:                  # one slot at a time: who went quiet?
            wait = 6 * ctx.census_round()
            before = ctx.census.rounds_after(time.monotonic(), ROUNDS, wait, ctx.cancel)
            ctx.hands.cut_power("reset in progress")   # opening a GPIO relay already cuts it
            after = ctx.census.rounds_after(time.monotonic(), ROUNDS, wait, ctx.cancel)
            gone = (frozenset().union(*before) - frozenset().union(*after) - ctx.claimed()
                    if before and after else frozenset())
            if len(gone) == 1:
                mac = next(iter(gone))
                ctx.limits.learned.add(mac)
        if len(gone) != 1:
            rec.note(f"identity not learned: {len(gone)} unit(s) went quiet")
            return Unit(None)
        sighting = ctx.census.last(mac)
        rec.note(f"identity learned by power-off roll call: {mac}")
        rec.evidence(EvidenceKind.IDENTITY, {"mac": mac, "how": "power-off roll call"},
                     step_id)
        return Unit(mac, sighting.device if sighting else None)


def adopt_newcomer(ctx: SlotContext, rec: Recorder, since: float,
                   timeout: float) -> SadpDevice | None:
    """A slot whose unit could not be identified at power-off: the one unit that appears after
    power-on (``since``) and belongs to no other slot, if there is exactly one."""
    def newcomer() -> SadpDevice | None:
        fresh = [s.device for s in (ctx.census.last(m) for m in ctx.census.present())
                 if s is not None and s.seen_at >= since and s.device.mac not in ctx.claimed()]
        return fresh[0] if len(fresh) == 1 else None
    found = ctx.census.wait_for(newcomer, timeout, ctx.cancel)
    if isinstance(found, SadpDevice):
        ctx.limits.learned.add(found.mac)
        rec.note(f"identity taken from the only new unit after power-on: {found.mac}")
        return found
    return None
