"""The slot's logins in one run: every path that may spend a login asks here first.

A camera locks the bench's address after a few failed logins
(docs/hikvision-protocols.md §2.5), and that count outlives a run. So a login is sent only when
all three allow it:

- SADP does not report DeviceLock=true (the unit is in its lock: no login at all);
- the unit's failed logins across runs (``store.logins``) leave room for one more below the
  firmware's lockout minus one (``LoginBudget``);
- no login to this unit has failed yet in this run (at most one failed login per unit per run,
  whatever asks: auto's check, a web reset's check, verification's login).

Each login's outcome goes back to the ledger: a failure adds one, a success clears the count.
The runner makes one ``LoginAllowance`` per slot per run; it is the slot's own stateful device
(like its hands), confined to the slot's worker thread.
"""

from __future__ import annotations

from rig.camera.isapi_types import UserCheck
from rig.camera.profiles import FirmwareProfile, ProfileSet
from rig.camera.sadp import SadpDevice
from rig.records import LoginBudget, LoginLedger

#: The check a verdict names when a login was refused by the budget or the lock.
LOGIN_BUDGET_CHECK = "login-budget"


def budget_for(profile: FirmwareProfile) -> LoginBudget:
    """The login budget a firmware family allows."""
    return LoginBudget(profile.lockout_attempts, profile.lockout_seconds,
                       profile.lock_cleared_by_power_cycle)


class LoginAllowance:
    """One slot's logins in one run, over the ledger of failed logins across runs."""

    def __init__(self, ledger: LoginLedger, profiles: ProfileSet,
                 fallback: FirmwareProfile) -> None:
        self._ledger = ledger
        self._profiles = profiles
        self._fallback = fallback
        self._failed: dict[str, str] = {}      # MAC → what spent its failed login this run

    def family(self, device: SadpDevice | None) -> FirmwareProfile:
        """The family the unit's SADP firmware shows, else the bench file's."""
        found = self._profiles.for_firmware(device.firmware or "") if device else None
        return found or self._fallback

    def refusal(self, mac: str, device: SadpDevice | None) -> str | None:
        """None when one login to ``mac`` may be sent now; otherwise why not, in words."""
        spent = self._failed.get(mac)
        if spent is not None:
            return (f"unit {mac} already had a failed login in this run ({spent}); the rig "
                    "spends at most one per unit per run, so no other login is sent")
        budget = budget_for(self.family(device))
        return budget.refusal(self._ledger.get(mac), self._ledger.now(),
                              device.device_lock if device else None)

    def spent(self, mac: str, device: SadpDevice | None, check: UserCheck | None,
              what: str) -> None:
        """Record one login sent to ``mac`` by ``what``: ``check`` is its answer (None: no
        readable answer, counted as a failure, since the camera may have counted it)."""
        if check is not None and check.ok:
            self._ledger.succeeded(mac)
            return
        self._failed[mac] = what
        attempts = self.family(device).lockout_attempts
        camera_count = None
        locked_for = None
        if check is not None and check.locked:
            lock = check.unlock_time or self.family(device).lockout_seconds
            camera_count, locked_for = attempts, float(lock)
        elif check is not None and check.retry_login_time is not None:
            camera_count = attempts - check.retry_login_time
        self._ledger.failed(mac, camera_count=camera_count, locked_for=locked_for,
                            note=f"{what} failed")

    def power_cycled(self, mac: str, device: SadpDevice | None) -> bool:
        """The unit booted after a power cycle: its count is cleared if its family's profile
        says a power cycle clears it (unknown so far for every family, so no)."""
        if not budget_for(self.family(device)).cleared_by_power_cycle:
            return False
        self._ledger.power_cycled(mac)
        return True
