"""GPIO: the pin factory opens, the bench's pins are free, and no output sits on a pin that
switches its load on while the Pi boots. Nothing is claimed: a pin is never made an output.

Why read-only matters here: claiming a pin as an output writes its level, which is exactly
what the doctor must not do. So "free" is read two ways, neither of which touches a line:
the factory's own reservations (this process: a simulated bench's MockFactory, handed in as
``BenchHardware`` takes it), and the kernel's line information (``GPIO_GET_LINEINFO_IOCTL`` on
the header's gpiochip: which lines another process holds, and as what).

Boot levels (docs/gpio-serial.md §2.1): BCM 0-8 come out of reset pulled up, so an
active-high solenoid there fires at every boot and whenever the controller is not running;
2/3 (fixed I2C pull-ups), 0/1 (HAT EEPROM) and 14/15 (UART) are refused by the drivers.
"""

from __future__ import annotations

import fcntl
import glob
import os
import struct
from typing import TYPE_CHECKING, Any

from rig.bench import GpioOutput
from rig.doctor.findings import Finding, fail, ok, warn
from rig.vocabulary import DoctorArea

if TYPE_CHECKING:
    from rig.doctor.runner import DoctorContext

_AREA = DoctorArea.GPIO
#: <linux/gpio.h> v1 ABI: _IOR(0xB4, 1, struct gpiochip_info) and
#: _IOWR(0xB4, 2, struct gpioline_info); GPIOLINE_FLAG_KERNEL (in use), GPIOLINE_FLAG_IS_OUT.
GPIO_GET_CHIPINFO_IOCTL = 0x8044B401
GPIO_GET_LINEINFO_IOCTL = 0xC048B402
CHIPINFO = struct.Struct("32s32sI")
LINEINFO = struct.Struct("II32s32s")
FLAG_USED, FLAG_OUT = 0x1, 0x2
#: The header's gpiochip labels: Pi 1-3, Pi 4, Pi 5 (RP1).
HEADER_CHIP_LABELS = ("pinctrl-bcm2835", "pinctrl-bcm2711", "pinctrl-rp1")


def probe(ctx: DoctorContext) -> list[Finding]:
    outputs = _outputs(ctx)
    if not outputs:
        return []
    findings = [_boot_level(pin, active_high, role, slot)
                for pin, active_high, role, slot in outputs]
    factory, made, problem = _factory(ctx)
    if problem is not None:
        return [*findings, problem]
    try:
        findings.append(_free(factory, ctx.bench.gpio_factory, outputs))
    finally:
        if made:
            factory.close()
    return findings


def _outputs(ctx: DoctorContext) -> list[tuple[int, bool, str, str]]:
    """(pin, active_high, "power relay" | "solenoid", slot) for every GPIO output."""
    found = []
    for slot in ctx.bench.slots:
        for role, spec in (("power relay", slot.power), ("solenoid", slot.button)):
            if isinstance(spec, GpioOutput):
                found.append((spec.pin, spec.active_high, role, slot.name))
    return found


def _boot_level(pin: int, active_high: bool, role: str, slot: str) -> Finding:
    from rig.actuators.gpio import BOOT_PULL_UP_PINS, RESERVED_PINS

    label = f"GPIO{pin} (slot {slot} {role})"
    fix = "move it to GPIO 16, 17 or 22-27 (pulled down at boot)"
    if pin in RESERVED_PINS:
        return fail(_AREA, label, f"reserved: {RESERVED_PINS[pin]}", fix)
    if active_high and pin in BOOT_PULL_UP_PINS:
        text = "pulled up from power-on until rig claims it: the load is on at every boot"
        if role == "solenoid":
            return fail(_AREA, label, f"active-high solenoid on a pin {text}", fix)
        return warn(_AREA, label, f"active-high relay on a pin {text}", fix)
    level = "high" if active_high else "low"
    return ok(_AREA, label, f"active-{level}; off while the Pi boots")


def _factory(ctx: DoctorContext) -> tuple[Any, bool, Finding | None]:
    """The pin factory handed in, else a new one by the bench's name (closed after)."""
    if ctx.pin_factory is not None:
        return ctx.pin_factory, False, None
    from rig.actuators.base import ActuatorError
    from rig.actuators.gpio import make_pin_factory

    name = ctx.bench.gpio_factory
    try:
        return make_pin_factory(name), True, None
    except (ActuatorError, ValueError) as exc:
        return None, False, fail(_AREA, f"pin factory {name}", str(exc),
                                 "install the factory's library, or run rig on the Pi with "
                                 "access to /dev/gpiochip* (group gpio)")


class _Probe:
    """A stand-in requester for gpiozero's reservation book: reserving and releasing a pin
    there is bookkeeping only, no line is touched."""

    def _conflicts_with(self, other: object) -> bool:
        return True

    def __repr__(self) -> str:
        return "rig doctor"


def _free(factory: Any, name: str, outputs: list[tuple[int, bool, str, str]]) -> Finding:
    from gpiozero import GPIOPinInUse

    pins = sorted({pin for pin, *_ in outputs})
    held: list[str] = []
    probe_ = _Probe()
    for pin in pins:
        try:
            factory.reserve_pins(probe_, pin)
        except GPIOPinInUse as exc:
            held.append(f"GPIO{pin} ({exc})")
        finally:
            factory.release_pins(probe_, pin)
    kernel = {} if name == "mock" else kernel_line_users(pins)
    held += [f"GPIO{pin} (held by {who!r})" for pin, who in sorted(kernel.items())]
    label = f"pin factory {name}"
    if held:
        return fail(_AREA, label, f"in use: {'; '.join(held)}",
                    "stop whatever holds them (another rig? `gpioinfo` names the consumer)")
    return ok(_AREA, label, f"opens; GPIO {', '.join(map(str, pins))} free")


def kernel_line_users(pins: list[int], chips: list[str] | None = None) -> dict[int, str]:
    """Pin → consumer for the header lines another process (or a kernel driver) holds, from
    the header gpiochip's line information. Empty when no header chip can be read."""
    for path in sorted(glob.glob("/dev/gpiochip*")) if chips is None else chips:
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError:
            continue
        try:
            info = fcntl.ioctl(fd, GPIO_GET_CHIPINFO_IOCTL, bytes(CHIPINFO.size))
            label = CHIPINFO.unpack(info)[1].rstrip(b"\0").decode(errors="replace")
            if label not in HEADER_CHIP_LABELS:
                continue
            return {pin: who for pin in pins
                    if (who := _line_user(fd, pin)) is not None}
        except OSError:
            continue
        finally:
            os.close(fd)
    return {}


def _line_user(fd: int, offset: int) -> str | None:
    """The consumer holding line ``offset`` (or "kernel"), None when it is free."""
    raw = fcntl.ioctl(fd, GPIO_GET_LINEINFO_IOCTL, LINEINFO.pack(offset, 0, b"", b""))
    return parse_line_info(raw)


def parse_line_info(raw: bytes) -> str | None:
    """A ``struct gpioline_info`` → its consumer when the line is in use, else None."""
    _, flags, _, consumer = LINEINFO.unpack(raw)
    if not flags & FLAG_USED:
        return None
    who = consumer.rstrip(b"\0").decode(errors="replace") or "kernel"
    return f"{who}, as {'output' if flags & FLAG_OUT else 'input'}"
