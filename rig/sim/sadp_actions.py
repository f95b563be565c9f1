"""The simulated camera's SADP commands: ``update`` (network settings by MAC) and ``lamp``.

Kept apart from VirtualCamera (whose transitions share one lock) because these commands touch
the unit only through its public surface: its settings, its admin password, its clock. Written
from the firmware facts (docs/hikvision-protocols.md §1.5), not from the controller's code: the
request is read here, the password is encoded here, so a controller bug cannot hide behind a
shared encoder.

What the firmware does, as far as the public sources say (the profile's ``[sadp]`` table):
- only the unit whose ``<MAC>`` matches acts; a family without the command stays silent;
- ``update`` checks ``Password`` = base64(raw MD5(admin password)); every wrong one counts;
  after ``sadp_update_lockout_attempts`` failures ``update`` is refused for
  ``sadp_update_lockout_minutes`` (scaled by time_scale); a power cycle or reset clears it;
- success is ``<Result>success</Result>``, sent from the OLD address before the unit moves.
The reply's extra elements (``RetryTimes``, ``DeviceLock``) are this simulator's choice
[synthetic]: the real reply's layout beyond ``Result`` is not public.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from rig import xmlsafe
from rig.camera.sadp import build_probe_match

if TYPE_CHECKING:
    from rig.sim.camera import VirtualCamera

COMMAND_TYPES = frozenset({"update", "lamp"})


@dataclass
class _UpdateLock:
    failures: int = 0
    locked_until: float | None = None


class SadpActions:
    """One unit's ``update`` and ``lamp`` handling, and its lamp and lock state."""

    def __init__(self, camera: VirtualCamera) -> None:
        self.camera = camera
        self._lock = threading.Lock()
        self._update = _UpdateLock()
        self.lamp = False
        #: Called with (event, details) after a lamp change or an accepted update.
        self.observers: list[Callable[[str, dict[str, object]], None]] = []

    def cleared_by_boot(self) -> None:
        """A power cycle or reset ends the ``update`` lock (the counter lives in RAM), and the
        lamp stops."""
        with self._lock:
            self._update = _UpdateLock()
            self.lamp = False

    @property
    def update_failures(self) -> int:
        with self._lock:
            return self._update.failures

    def update_locked(self) -> bool:
        with self._lock:
            return self._locked(self.camera._clock())

    def _locked(self, now: float) -> bool:
        until = self._update.locked_until
        if until is not None and now >= until:
            self._update = _UpdateLock()
            return False
        return until is not None

    def handle(self, types: str, data: bytes) -> bytes | None:
        """The reply to one command datagram, or None (not for this unit, not supported)."""
        try:
            fields = xmlsafe.children_text(xmlsafe.parse(data, max_bytes=8192))
        except xmlsafe.XmlError:
            return None
        cam = self.camera
        if not cam.running or cam.faults.sadp_silent or not self._for_me(fields.get("MAC")):
            return None
        if types == "lamp" and cam.profile.sadp_lamp:
            return self._lamp(fields)
        if types == "update" and cam.profile.sadp_update:
            return self._reply(fields, *self._apply_update(fields))
        return None

    def _for_me(self, mac: str | None) -> bool:
        text = (mac or "").strip().lower().replace("-", ":")
        return text == self.camera.mac

    def _reply(self, fields: dict[str, str], result: str,
               extra: list[tuple[str, str]]) -> bytes:
        cam = self.camera
        out = [("Uuid", fields.get("Uuid", "")), ("Types", fields.get("Types", "")),
               ("MAC", cam.mac.replace(":", "-")), ("Result", result), *extra]
        return build_probe_match(out, layout=cam.behaviour.sadp_layout)

    def _lamp(self, fields: dict[str, str]) -> bytes:
        action = fields.get("Action", "").strip().lower()
        if action not in ("open", "close"):
            return self._reply(fields, "failure", [])
        with self._lock:
            self.lamp = action == "open"
        self._notify("lamp", {"mac": self.camera.mac, "lamp": self.lamp})
        return self._reply(fields, "success", [])

    def _apply_update(self, fields: dict[str, str]) -> tuple[str, list[tuple[str, str]]]:
        cam, p = self.camera, self.camera.profile
        now = cam._clock()
        admin = cam.password_for(p.default_user)      # before our lock: the camera's comes first
        with self._lock:
            if self._locked(now):
                return "denied", [("DeviceLock", "true")]
            if not admin:
                return "denied", [("Activated", "false")]   # SADP Tool activates first
            if not hmac.compare_digest(fields.get("Password", ""), md5_base64(admin)):
                self._update.failures += 1
                left = p.sadp_update_lockout_attempts - self._update.failures
                if left <= 0:
                    self._update.locked_until = now + cam.scaled(
                        p.sadp_update_lockout_minutes * 60)
                    cam.events.append((now, "sadp update locked"))
                    return "failure", [("RetryTimes", "0"), ("DeviceLock", "true")]
                return "failure", [("RetryTimes", str(left))]
            self._update.failures = 0
        changes = self._changes(fields)
        if changes is None or cam.faults.refuse_network:
            return "denied", []
        cam.update_settings(**changes)
        self._notify("update", {"mac": cam.mac, **changes})
        return "success", []

    @staticmethod
    def _changes(fields: dict[str, str]) -> dict[str, object] | None:
        """The settings an update asks for (DHCP on keeps the static ones as they are: the
        simulated bench has no DHCP server, so the unit keeps its address)."""
        dhcp = xmlsafe.parse_bool(fields.get("DHCP"))
        if dhcp:
            return {"dhcp": True}
        try:
            values = {name: str(ipaddress.IPv4Address(fields.get(key, "")))
                      for key, name in (("IPv4Address", "ipv4"), ("IPv4SubnetMask", "mask"),
                                        ("IPv4Gateway", "gateway"))}
        except ValueError:
            return None
        return {"dhcp": False, **values}

    def _notify(self, event: str, details: dict[str, object]) -> None:
        for observer in list(self.observers):
            try:
                observer(event, details)
            except Exception:  # noqa: BLE001 - an observer's bug must not break the unit
                pass


def md5_base64(password: str) -> str:
    """base64(raw MD5(password)): what the documented firmware expects in ``Password``."""
    return base64.b64encode(hashlib.md5(password.encode("utf-8")).digest()).decode("ascii")
