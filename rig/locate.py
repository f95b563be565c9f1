"""Locate a unit on the bench: blink its LED through SADP ``lamp``, addressed by MAC.

Why SADP: the technician needs to know which box on the shelf a MAC is, while every unit may
sit on 192.168.1.64; ``lamp`` is multicast and only the unit with that MAC acts on it
(docs/hikvision-protocols.md §1.5). A family whose profile says ``sadp_lamp = false`` is not
sent anything: the result says so, and the CLI offers a power cycle of the slot instead (the
unit whose lights go out is the one). ``lamp`` is harmless to repeat, so unlike ``update`` it is
sent up to three times in its window against UDP loss.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rig.camera import sadp_commands
from rig.camera.profiles import FirmwareProfile
from rig.camera.sadp import normalize_mac
from rig.netsetup import SadpPlace
from rig.vocabulary import LampState, LocateOutcome


@dataclass(frozen=True)
class LocateResult:
    """One ``lamp`` request's outcome. ``lamp`` is the state asked for."""

    mac: str
    lamp: LampState
    outcome: LocateOutcome
    message: str
    reply: dict[str, Any] | None = None

    @property
    def ok(self) -> bool:
        return self.outcome is LocateOutcome.DONE

    def to_json(self) -> dict[str, Any]:
        return {"mac": self.mac, "lamp": str(self.lamp), "outcome": str(self.outcome),
                "ok": self.ok, "message": self.message, "reply": self.reply}


def locate(mac: str, *, on: bool = True, profile: FirmwareProfile | None, place: SadpPlace,
           timeout: float = 3.0) -> LocateResult:
    """Blink (``on``) or stop blinking the LED of unit ``mac``. ``profile`` None means the
    family is unknown: the request is sent and silence is reported as such."""
    mac = normalize_mac(mac)
    lamp = LampState.OPEN if on else LampState.CLOSE
    if profile is not None and not profile.sadp_lamp:
        return LocateResult(mac, lamp, LocateOutcome.UNSUPPORTED,
                            f"{mac}: firmware family {profile.name!r} has no SADP lamp: its "
                            f"LED cannot be blinked")
    request_uuid, datagram = sadp_commands.build_lamp(mac, on)
    try:
        exchange = sadp_commands.exchange(datagram, request_uuid, mac, timeout=timeout,
                                          sends=sadp_commands.LAMP_SENDS, bind=place.bind,
                                          interface=place.interface)
    except sadp_commands.SadpCommandError as exc:
        return LocateResult(mac, lamp, LocateOutcome.ERROR, f"{mac}: lamp not sent: {exc}")
    if exchange.reply is None:
        if exchange.unreadable:
            return LocateResult(mac, lamp, LocateOutcome.ERROR,
                                f"{mac}: unreadable reply to lamp: "
                                f"{'; '.join(exchange.unreadable)}")
        return LocateResult(mac, lamp, LocateOutcome.NO_REPLY,
                            f"{mac}: no reply to lamp within {timeout:g} s (off, elsewhere, or "
                            f"firmware without lamp)")
    reply = exchange.reply.to_json()
    if not exchange.reply.ok:
        return LocateResult(mac, lamp, LocateOutcome.FAILED,
                            f"{mac}: lamp {lamp} answered {exchange.reply.result}", reply)
    what = "blinking" if on else "no longer blinking"
    return LocateResult(mac, lamp, LocateOutcome.DONE, f"{mac}: LED {what}", reply)
