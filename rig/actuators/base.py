"""What every actuator shares: the power and button interfaces, bench-fault errors, the solenoid
on-time cap, and the guard that puts outputs in their safe state on a signal or at exit.

The rig's hands are a power switch per slot (GPIO relay, serial relay channel or PoE port) and a
push solenoid on the reset button (GPIO or serial relay channel). Drivers for each kind implement
``PowerControl`` or subclass ``CappedButton``; procedures only see these interfaces.
"""

from __future__ import annotations

import atexit
import enum
import logging
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from types import FrameType
from typing import Protocol, runtime_checkable

from rig.vocabulary import BenchFaultKind

log = logging.getLogger(__name__)

#: Push solenoids on a 15-30 s reset hold run beyond intermittent duty; never past this by default
#: (docs/gpio-serial.md §2.4: intermittent duty is "not more than 2 or 3 minutes").
DEFAULT_MAX_ON_SECONDS = 45.0


class ActuatorError(RuntimeError):
    """A bench part failed: a bench fault, not a fault of the camera. ``part`` names it;
    ``kind`` (a class attribute, set by each driver's subclass) what sort of part it is."""

    kind: BenchFaultKind = BenchFaultKind.ACTUATOR

    def __init__(self, part: str, message: str) -> None:
        super().__init__(f"{part}: {message}")
        self.part = part
        self.message = message


class PowerState(enum.Enum):
    ON = "on"
    OFF = "off"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class PowerReading:
    """A power output read back. ``drawing_power`` is known only where hardware reports it
    (PoE detection status); relays report only their own state, or nothing."""

    state: PowerState
    drawing_power: bool | None = None
    detail: str = ""


@runtime_checkable
class PowerControl(Protocol):
    """One slot's power: a relay channel or a PoE port."""

    name: str

    def on(self) -> None: ...

    def off(self) -> None: ...

    def read(self) -> PowerReading: ...

    def close(self) -> None: ...


class CappedButton:
    """A reset-button solenoid that can never stay energised longer than ``max_on_seconds``.

    Subclasses provide ``_energise()`` and ``_release()`` for their hardware. A press longer than
    the cap is refused before anything moves; a watchdog timer releases at the cap even if the
    caller hangs; any exception inside ``hold()`` releases; ``release()`` is always safe to call.
    A cool-down as long as the last on-time protects the coil (intermittent duty).
    """

    def __init__(self, name: str, max_on_seconds: float = DEFAULT_MAX_ON_SECONDS,
                 cooldown_ratio: float = 1.0, clock: Callable[[], float] = time.monotonic) -> None:
        if max_on_seconds <= 0:
            raise ValueError("max_on_seconds must be positive")
        self.name = name
        self.max_on_seconds = max_on_seconds
        self.cooldown_ratio = cooldown_ratio
        self._clock = clock
        self._lock = threading.RLock()
        self._energised_at: float | None = None
        self._cool_until = 0.0
        self._watchdog: threading.Timer | None = None
        self.watchdog_fired = False

    def _energise(self) -> None:
        raise NotImplementedError

    def _release(self) -> None:
        raise NotImplementedError

    @property
    def energised(self) -> bool:
        return self._energised_at is not None

    def cooldown_left(self) -> float:
        """Seconds until the coil may be energised again (0 when it may now)."""
        return max(self._cool_until - self._clock(), 0.0)

    def check(self, seconds: float) -> None:
        """Refuse, before anything moves, a press the cap or the cool-down does not allow."""
        if not 0 < seconds <= self.max_on_seconds:
            raise ValueError(f"{self.name}: a press of {seconds:g} s is outside (0, "
                             f"{self.max_on_seconds:g}] s, the solenoid's on-time cap")
        wait = self._cool_until - self._clock()
        if wait > 0:
            raise ActuatorError(self.name, f"solenoid cooling down, {wait:.1f} s left")

    @contextmanager
    def hold(self, seconds: float) -> Iterator[None]:
        """Energise for at most ``seconds`` (≤ cap) while the block runs; released on exit.

        The watchdog releases just after ``seconds`` (never after the cap) even if the block is
        still running, so a hung step cannot cook the coil.
        """
        with self._lock:
            self.check(seconds)
            if self.energised:
                raise ActuatorError(self.name, "already energised")
            self.watchdog_fired = False
            # A little past the hold so a normal release wins the race, never past the cap.
            limit = min(seconds * 1.02 + 0.05, self.max_on_seconds)
            self._watchdog = threading.Timer(limit, self._on_watchdog)
            self._watchdog.daemon = True
            try:
                self._energised_at = self._clock()
                self._energise()
                self._watchdog.start()       # no watchdog, no press
            except BaseException:
                self.release()
                raise
        try:
            yield
        finally:
            self.release()

    def press(self, seconds: float) -> None:
        """Press for ``seconds`` and release (blocking)."""
        with self.hold(seconds):
            time.sleep(seconds)

    def release(self) -> None:
        """De-energise now. Safe to call at any time, any number of times, from any thread.

        If the driver fails to release (a board unplugged), this raises and the coil still
        counts as energised: the watchdog stays armed and tries again at the limit."""
        with self._lock:
            started = self._energised_at
            self._release()
            if self._watchdog is not None:
                self._watchdog.cancel()
                self._watchdog = None
            self._energised_at = None
            if started is not None:
                now = self._clock()
                self._cool_until = now + (now - started) * self.cooldown_ratio

    def _on_watchdog(self) -> None:
        log.error("%s: on-time cap reached, releasing the solenoid", self.name)
        self.watchdog_fired = True
        try:
            self.release()
        except Exception:  # noqa: BLE001 - a timer thread has no caller to tell
            log.critical("%s: THE SOLENOID MAY STILL BE ENERGISED: release failed",
                         self.name, exc_info=True)

    def close(self) -> None:
        self.release()


class OutputGuard:
    """Puts registered outputs in their safe state on SIGINT, SIGTERM and at interpreter exit.

    gpiozero's own cleanup runs at exit but not on SIGTERM (``systemctl stop``), and a Pi keeps a
    released line at its last level, so the rig does this itself. One guard per process, created
    by the command that drives hardware; ``close()`` restores the previous handlers.
    """

    def __init__(self) -> None:
        self._outputs: list[Callable[[], None]] = []
        self._previous: dict[int, object] = {}
        self._lock = threading.Lock()
        self._installed = False

    def register(self, make_safe: Callable[[], None]) -> None:
        with self._lock:
            self._outputs.append(make_safe)

    def make_all_safe(self) -> list[str]:
        """Call every registered safe-state function; returns the errors (never raises)."""
        errors: list[str] = []
        with self._lock:
            outputs = list(self._outputs)
        for make_safe in outputs:
            try:
                make_safe()
            except Exception as exc:  # noqa: BLE001 - every output must get its chance
                errors.append(str(exc))
                log.error("could not put an output in its safe state: %s", exc)
        return errors

    def install(self) -> OutputGuard:
        if threading.current_thread() is not threading.main_thread():
            raise RuntimeError("OutputGuard.install() must run in the main thread")
        for signum in (signal.SIGINT, signal.SIGTERM):
            self._previous[signum] = signal.signal(signum, self._on_signal)
        atexit.register(self.make_all_safe)
        self._installed = True
        return self

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self.make_all_safe()
        if signum == signal.SIGINT:
            raise KeyboardInterrupt
        sys.exit(128 + signum)

    def uninstall(self) -> None:
        """Restore the previous handlers without touching the outputs (they are where the
        operator asked them to be)."""
        if self._installed:
            for signum, handler in self._previous.items():
                signal.signal(signum, handler)  # type: ignore[arg-type]
            atexit.unregister(self.make_all_safe)
            self._installed = False

    def close(self) -> None:
        """Outputs to their safe state, then the previous handlers back."""
        self.make_all_safe()
        self.uninstall()

    def __enter__(self) -> OutputGuard:
        return self.install()

    def __exit__(self, *exc: object) -> None:
        self.close()
