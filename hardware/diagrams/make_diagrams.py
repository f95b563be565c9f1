#!/usr/bin/env python3
"""Build rig's hardware diagrams (SVG) from the example bench files and the tables below.

    python3 hardware/diagrams/make_diagrams.py            # rewrite hardware/diagrams/*.svg
    python3 hardware/diagrams/make_diagrams.py --out DIR  # write them somewhere else
    python3 hardware/diagrams/make_diagrams.py --check    # exit 1 if a committed SVG is stale

The wiring diagrams read hardware/benches/*.toml directly, so a pin, port, channel or VLAN changed
in a bench file changes the drawing the next time this runs, and tests/test_hardware.py fails until
the regenerated SVGs are committed. Pure standard library (Python 3.11+: tomllib); it does not
import rig, so it runs on any machine that has the repository.

Output is deterministic: no dates, integer coordinates, sorted iteration.
"""

from __future__ import annotations

import argparse
import sys
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

HERE = Path(__file__).resolve().parent
BENCH_DIR = HERE.parent / "benches"

#: The bench files drawn, in the order the README lists the bench types.
BENCH_FILES = ("dc-gpio-4.toml", "poe-gpio-8.toml", "poe-serial-24.toml")

# --- the Raspberry Pi 40-pin header (identical on Pi 2 B to Pi 5) --------------------------------
#: Physical pin -> BCM number, or the name of a supply pin.
HEADER: dict[int, int | str] = {
    1: "3V3", 2: "5V", 3: 2, 4: "5V", 5: 3, 6: "GND", 7: 4, 8: 14, 9: "GND", 10: 15,
    11: 17, 12: 18, 13: 27, 14: "GND", 15: 22, 16: 23, 17: "3V3", 18: 24, 19: 10, 20: "GND",
    21: 9, 22: 25, 23: 11, 24: 8, 25: "GND", 26: 7, 27: 0, 28: 1, 29: 5, 30: "GND",
    31: 6, 32: 12, 33: 13, 34: "GND", 35: 19, 36: 16, 37: 26, 38: 20, 39: "GND", 40: 21,
}
BCM_TO_HEADER: dict[int, int] = {v: k for k, v in HEADER.items() if isinstance(v, int)}

#: Pins rig never drives (gpio-serial.md section 2.1).
RESERVED: dict[int, str] = {
    0: "ID_SD: HAT EEPROM probe at boot", 1: "ID_SC: HAT EEPROM probe at boot",
    2: "SDA1: fixed 1.8k pull-up", 3: "SCL1: fixed 1.8k pull-up",
    14: "TXD0: UART, high during boot", 15: "RXD0: UART console",
}
#: Pins the benches leave free on purpose (see pinmap.md for why).
KEPT_FREE: dict[int, str] = {
    8: "SPI0 CE0 (kept free)", 9: "SPI0 MISO (kept free)", 10: "SPI0 MOSI (kept free)",
    11: "SPI0 SCLK (kept free)", 12: "PWM0 (spare)", 13: "PWM1 (spare)",
    18: "PCM CLK (spare)", 19: "PCM FS (spare)", 20: "PCM DIN (spare)", 21: "PCM DOUT (spare)",
}


def boot_pull(bcm: int) -> str:
    """Reset-time pull on BCM283x (Pi 1-4): GPIO 0-8 up, 9-27 down (BCM2835 table 6-31)."""
    return "up" if bcm <= 8 else "down"


# --- colours and line styles ---------------------------------------------------------------------
INK = "#1b1f24"
MUTED = "#57606a"
WIRE = {  # kind: (colour, dash, legend text)
    "signal": ("#0969da", "", "GPIO signal, 3.3 V logic"),
    "cam": ("#cf222e", "", "12 V camera power"),
    "sol": ("#bc4c00", "", "12 V solenoid drive (switched)"),
    "poe": ("#1a7f37", "", "Ethernet with PoE (48 V on the pairs)"),
    "eth": ("#1a7f37", "6 4", "Ethernet trunk: management + slot VLANs"),
    "usb": ("#8250df", "", "USB"),
    "gnd": (INK, "", "ground (common 0 V)"),
    "supply": ("#9a6700", "", "supply rail, fused"),
}
FILL = {
    "pi": "#ddf4ff", "relay": "#fff1e5", "mosfet": "#fbefff", "board": "#f5f0ff",
    "switch": "#dafbe1", "slot": "#f6f8fa", "note": "#fffbdd", "psu": "#fff8c5",
}
FONT = "DejaVu Sans, Verdana, Arial, sans-serif"


class Svg:
    """A tiny SVG writer: elements in drawing order, serialised with escaped text."""

    def __init__(self, width: int, height: int, title: str, desc: str) -> None:
        self.width, self.height = width, height
        self.parts: list[str] = [
            f"<title>{escape(title)}</title>",
            f"<desc>{escape(desc)}</desc>",
            f'<rect x="0" y="0" width="{width}" height="{height}" fill="#ffffff"/>',
        ]

    def add(self, tag: str, text: str | None = None, **attrs: object) -> None:
        rendered = " ".join(f"{k.rstrip('_').replace('_', '-')}={quoteattr(str(v))}"
                            for k, v in attrs.items() if v is not None and v != "")
        if text is None:
            self.parts.append(f"<{tag} {rendered}/>")
        else:
            self.parts.append(f"<{tag} {rendered}>{escape(text)}</{tag}>")

    def rect(self, x: int, y: int, w: int, h: int, fill: str = "none", stroke: str = INK,
             dash: str = "", rx: int = 4, width: float = 1.2) -> None:
        self.add("rect", x=x, y=y, width=w, height=h, rx=rx, fill=fill, stroke=stroke,
                 stroke_width=width, stroke_dasharray=dash)

    def line(self, points: Iterable[tuple[int, int]], kind: str = "signal",
             width: float = 2.0) -> None:
        colour, dash, _ = WIRE[kind]
        pts = " ".join(f"{x},{y}" for x, y in points)
        self.add("polyline", points=pts, fill="none", stroke=colour, stroke_width=width,
                 stroke_dasharray=dash, stroke_linejoin="round")

    def text(self, x: int, y: int, text: str, size: int = 12, anchor: str = "start",
             weight: str = "normal", fill: str = INK) -> None:
        self.add("text", text, x=x, y=y, font_size=size, text_anchor=anchor,
                 font_weight=weight if weight != "normal" else "", fill=fill,
                 font_family=FONT)

    def dot(self, x: int, y: int, r: int = 3, fill: str = INK) -> None:
        self.add("circle", cx=x, cy=y, r=r, fill=fill)

    def legend(self, x: int, y: int, kinds: Iterable[str], width: int = 330) -> int:
        """Draw a legend of wire kinds starting at (x, y); returns the y below it."""
        kinds = list(kinds)
        self.rect(x, y, width, 24 + 18 * len(kinds), fill="#ffffff", stroke=MUTED)
        self.text(x + 10, y + 17, "Legend", weight="bold")
        for i, kind in enumerate(kinds):
            yy = y + 34 + 18 * i
            self.line([(x + 10, yy - 4), (x + 50, yy - 4)], kind, width=3)
            self.text(x + 58, yy, WIRE[kind][2], size=11)
        return y + 24 + 18 * len(kinds)

    def render(self) -> str:
        head = (f'<svg xmlns="http://www.w3.org/2000/svg" width="{self.width}" '
                f'height="{self.height}" viewBox="0 0 {self.width} {self.height}" '
                f'font-family="{FONT}">')
        return "\n".join(['<?xml version="1.0" encoding="UTF-8"?>', head, *self.parts,
                          "</svg>", ""])


# --- reading a bench file ------------------------------------------------------------------------
@dataclass(frozen=True)
class SlotRow:
    name: str
    power: dict
    button: dict | None
    vlan: int | None


@dataclass(frozen=True)
class BenchData:
    file: str
    name: str
    data: dict
    slots: tuple[SlotRow, ...]

    @property
    def switches(self) -> dict:
        return self.data.get("switches", {})

    @property
    def boards(self) -> dict:
        return self.data.get("relay_boards", {})

    @property
    def bench(self) -> dict:
        return self.data.get("bench", {})

    @property
    def network(self) -> dict:
        return self.data.get("network", {})


def read_bench(path: Path) -> BenchData:
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    slots = tuple(SlotRow(str(s["name"]), s["power"], s.get("button"), s.get("vlan"))
                  for s in data["slots"])
    return BenchData(path.name, data.get("bench", {}).get("name", path.stem), data, slots)


def gpio_roles(benches: Iterable[BenchData]) -> dict[int, dict[str, set[str]]]:
    """BCM pin -> {"role text": {bench names}} over every bench file."""
    roles: dict[int, dict[str, set[str]]] = {}
    for bench in benches:
        for index, slot in enumerate(bench.slots, 1):
            for part, spec in (("power", slot.power), ("button", slot.button)):
                if spec and spec.get("kind") == "gpio":
                    role = (f"solenoid, slot {index}" if part == "button"
                            else f"camera relay IN{index} (active-low)")
                    roles.setdefault(spec["pin"], {}).setdefault(role, set()).add(bench.name)
    return roles


def pin_label(bcm: int) -> str:
    return f"GPIO{bcm} · pin {BCM_TO_HEADER[bcm]}"


# --- wiring diagram of one bench -----------------------------------------------------------------
ROW = 46          # height of one slot row
INFRA_Y = 110     # y of the band with supplies, switch and USB boards
PI_X, PI_W = 30, 230
DRV_X, DRV_W = 360, 300
SLOT_X, SLOT_W = 770, 250
WIDTH = 1100
BOX_W, BOX_H, BOX_GAP, BOXES_PER_ROW = 200, 58, 12, 2
LEGEND_X, LEGEND_W = 780, 300


def bench_diagram(bench: BenchData) -> str:
    n = len(bench.slots)
    kinds = _wire_kinds(bench)
    boxes = _infrastructure_boxes(bench)
    box_rows = max((row for _, row, _ in _box_places(boxes)), default=-1) + 1
    legend_bottom = INFRA_Y + 24 + 18 * len(kinds)
    top = max(INFRA_Y + box_rows * (BOX_H + BOX_GAP), legend_bottom) + 30
    switch_ports = {name: sorted(s.power["port"] for s in bench.slots
                                 if s.power["kind"] == "poe" and s.power["switch"] == name)
                    for name in sorted(bench.switches)}
    notes = _notes(bench, switch_ports)
    foot = top + n * ROW + 14
    height = foot + 22 + 18 * len(notes) + 20
    svg = Svg(WIDTH, height, f"rig bench {bench.name}: wiring",
              f"Generated by hardware/diagrams/make_diagrams.py from hardware/benches/"
              f"{bench.file}. One row per slot: power path on top, reset-button path below.")
    svg.text(30, 34, f"Bench “{bench.name}”: wiring of {n} slots", size=20, weight="bold")
    svg.text(30, 56, f"Generated from hardware/benches/{bench.file} by make_diagrams.py; "
                     "edit the bench file, not this drawing.", size=12, fill=MUTED)
    cap = bench.bench.get("solenoid_max_on_seconds", 45)
    max_on = bench.bench.get("max_solenoids_on", 8)
    svg.text(30, 76, f"Solenoid cap {cap:g} s per press, cool-down = on-time, at most {max_on} "
                     f"solenoids energised at once. Identity: {bench.network.get('identity')}.",
             size=12, fill=MUTED)
    svg.legend(LEGEND_X, INFRA_Y, kinds, LEGEND_W)

    # the controller
    pi_top, pi_bottom = INFRA_Y, top + n * ROW - 6
    svg.rect(PI_X, pi_top, PI_W, pi_bottom - pi_top, fill=FILL["pi"])
    svg.text(PI_X + 10, pi_top + 20, "Raspberry Pi 4 / 5", weight="bold")
    svg.text(PI_X + 10, pi_top + 38, f"{bench.network.get('interface', 'eth0')} "
                                     f"{bench.network.get('address', '')}", size=11)
    svg.text(PI_X + 10, pi_top + 54, "GND pins 6, 9, 14, 20 … to every 0 V", size=11)

    _draw_boxes(svg, boxes)

    for i, slot in enumerate(bench.slots):
        y0 = top + i * ROW
        yp, yb = y0 + 12, y0 + 32
        # slot box
        svg.rect(SLOT_X, y0, SLOT_W, ROW - 6, fill=FILL["slot"], stroke=MUTED)
        svg.text(SLOT_X + 10, y0 + 17, f"slot {slot.name}", weight="bold")
        kind = "PoE camera" if slot.power["kind"] == "poe" else "12 V DC camera"
        vlan = f", VLAN {slot.vlan}" if slot.vlan else ""
        svg.text(SLOT_X + 10, y0 + 33, f"{kind}{vlan}", size=11, fill=MUTED)
        svg.text(SLOT_X + SLOT_W - 8, yp + 4, "power in", size=10, anchor="end", fill=MUTED)
        svg.text(SLOT_X + SLOT_W - 8, yb + 4, "reset solenoid", size=10, anchor="end",
                 fill=MUTED)
        # power path
        _path(svg, slot.power, yp, power=True, index=i + 1)
        # button path
        if slot.button is not None:
            _path(svg, slot.button, yb, power=False, index=i + 1)

    svg.rect(30, foot, WIDTH - 60, 20 + 18 * len(notes), fill=FILL["note"], stroke=MUTED)
    for k, note in enumerate(notes):
        svg.text(42, foot + 22 + 18 * k, note, size=11)
    return svg.render()


def _wire_kinds(bench: BenchData) -> list[str]:
    kinds = []
    specs = [s.power for s in bench.slots] + [s.button for s in bench.slots if s.button]
    if any(s["kind"] == "gpio" for s in specs):
        kinds.append("signal")
    if any(s.power["kind"] != "poe" for s in bench.slots):
        kinds.append("cam")
    kinds.append("sol")
    if bench.switches:
        kinds += ["poe", "eth"]
    if bench.boards:
        kinds.append("usb")
    return kinds


def _infrastructure_boxes(bench: BenchData) -> list[tuple[str, list[str], str, str]]:
    """Supplies, switch and USB boards: (title, lines, fill, wire kind from the Pi or "")."""
    boxes: list[tuple[str, list[str], str, str]] = []
    for name, sw in sorted(bench.switches.items()):
        security = " authPriv" if str(sw.get("version")) == "3" else ""
        boxes.append((f"PoE switch “{name}”",
                      [f"{sw.get('host')} · SNMP v{sw.get('version', '2c')}{security}",
                       f"MIB {sw.get('mib', 'rfc3621')} · group {sw.get('group', 1)} · "
                       f"{sw.get('power_budget_watts', '?')} W"],
                      FILL["switch"], "eth"))
    for name, board in sorted(bench.boards.items()):
        tail = str(board.get("port", "")).rsplit("/", 1)[-1]
        tail = tail if len(tail) <= 30 else "…" + tail[-29:]
        boxes.append((f"relay board “{name}”",
                      [f"{board.get('protocol')} · {board.get('channels')} channels", tail],
                      FILL["board"], "usb"))
    buttons = {s.button["kind"] for s in bench.slots if s.button}
    if "gpio" in buttons:
        boxes.append(("12 V solenoid supply", ["fused rail → each solenoid +",
                                               "MOSFET sources → common GND"], FILL["psu"], ""))
    if "relay" in buttons:
        boxes.append(("12 V solenoid supply", ["fused rail → each relay COM",
                                               "solenoid − → supply −"], FILL["psu"], ""))
    if any(s.power["kind"] == "gpio" for s in bench.slots):
        boxes.append(("relay module supplies", ["VCC ← Pi 3V3 (pin 1)",
                                                "JD-VCC ← own 5 V, jumper off"],
                      FILL["relay"], ""))
        boxes.append(("12 V camera supply", ["fuse per slot → relay COM",
                                             "camera − → supply −"], FILL["psu"], ""))
    return boxes


def _box_places(boxes: list[tuple[str, list[str], str, str]]) -> list[tuple[int, int, int]]:
    """(box index, row, column): boxes wired to the Pi stack in column 0, one per row, so their
    wires never cross another box; the supplies fill column 1 (or both columns if nothing is
    wired)."""
    wired = [k for k, box in enumerate(boxes) if box[3]]
    plain = [k for k, box in enumerate(boxes) if not box[3]]
    places = [(k, row, 0) for row, k in enumerate(wired)]
    if wired:
        places += [(k, row, 1) for row, k in enumerate(plain)]
    else:
        places += [(k, i // BOXES_PER_ROW, i % BOXES_PER_ROW) for i, k in enumerate(plain)]
    return sorted(places)


def _draw_boxes(svg: Svg, boxes: list[tuple[str, list[str], str, str]]) -> None:
    for k, row, col in _box_places(boxes):
        title, lines, fill, wire = boxes[k]
        bx = DRV_X + col * (BOX_W + BOX_GAP)
        by = INFRA_Y + row * (BOX_H + BOX_GAP)
        svg.rect(bx, by, BOX_W, BOX_H, fill=fill)
        svg.text(bx + 8, by + 17, title, size=11, weight="bold")
        for j, line in enumerate(lines):
            svg.text(bx + 8, by + 33 + 14 * j, line, size=10)
        if wire:
            ly = by + BOX_H // 2
            svg.line([(PI_X + PI_W, ly), (bx, ly)], wire)
            label = "eth0, trunk" if wire == "eth" else "USB"
            svg.text(PI_X + PI_W + 8, ly - 5, label, size=10)


def _path(svg: Svg, spec: dict, y: int, *, power: bool, index: int) -> None:
    """One output: Pi pin (if GPIO) → driver channel box → slot."""
    kind = spec["kind"]
    bx, bw, bh = DRV_X, DRV_W, 18
    if kind == "gpio":
        pin = spec["pin"]
        svg.text(PI_X + PI_W - 8, y + 4, pin_label(pin), size=11, anchor="end", weight="bold")
        svg.dot(PI_X + PI_W, y)
        svg.line([(PI_X + PI_W, y), (bx, y)], "signal")
        if power:
            label = f"K{index} relay module IN{index} (active-low) → COM/NO"
            fill, out = FILL["relay"], "cam"
        else:
            label = f"Q{index} AO3400A: 100 Ω gate, 10 kΩ to GND"
            fill, out = FILL["mosfet"], "sol"
    elif kind == "relay":
        label = f"board “{spec['board']}” channel {spec['channel']} (NO contact)"
        fill, out = FILL["board"], "cam" if power else "sol"
    else:
        label = f"switch “{spec['switch']}” port {spec['port']}"
        fill, out = FILL["switch"], "poe"
    svg.rect(bx, y - bh // 2, bw, bh, fill=fill, rx=3, width=1)
    svg.text(bx + 6, y + 4, label, size=11)
    svg.line([(bx + bw, y), (SLOT_X, y)], out)
    svg.dot(SLOT_X, y, fill=WIRE[out][0])


def _notes(bench: BenchData, switch_ports: dict[str, list[int]]) -> list[str]:
    rest = ["solenoids released"]
    if any(s.power["kind"] != "poe" for s in bench.slots):
        rest.append("relay contacts open (camera unpowered)")
    if bench.switches:
        rest.append("PoE ports back on, as the switch keeps them by default")
    notes = ["Rest state (no software needed, restored by rig safe): " + ", ".join(rest) + "."]
    if any(s.button and s.button["kind"] == "gpio" for s in bench.slots):
        notes.append("Each solenoid: flyback diode across the coil, cathode to +12 V; "
                     "solenoid pins are pulled down at boot (pinmap.md).")
    if any(s.power["kind"] == "gpio" for s in bench.slots):
        notes.append("Relay inputs are active-low and sit on pins pulled up at boot; "
                     "camera +12 V goes through COM → NO (open when idle).")
    if bench.boards:
        notes.append("USB relay boards keep their last state while powered: rig safe "
                     "(ExecStopPost) releases them; use 100 %-duty coils on this bench.")
    for name, ports in sorted(switch_ports.items()):
        notes.append(f"Switch “{name}”: ports {min(ports)}–{max(ports)} are access ports, "
                     "one VLAN each; the Pi's port is a trunk (switch-setup.md).")
    return notes


# --- the 40-pin header map -----------------------------------------------------------------------
def header_diagram(benches: list[BenchData]) -> str:
    roles = gpio_roles(benches)
    width, height = 1100, 880
    svg = Svg(width, height, "rig: Raspberry Pi header pin map",
              "Generated by hardware/diagrams/make_diagrams.py from every bench file in "
              "hardware/benches/. Solenoid and relay pins, reserved pins and pins kept free.")
    svg.text(30, 34, "Raspberry Pi 40-pin header: pins used by the example benches",
             size=20, weight="bold")
    svg.text(30, 56, "BCM numbers; boot pull on Pi 1–4 (GPIO 0–8 up, 9–27 down). "
                     "Generated from hardware/benches/*.toml.", size=12, fill=MUTED)
    colours = {"solenoid": "#bc4c00", "relay": "#cf222e", "reserved": "#6e7781",
               "free": "#0969da", "3V3": "#d4a72c", "5V": "#e85aad", "GND": INK,
               "unused": "#afb8c1"}
    cx_left, cx_right, y0, step = 520, 580, 110, 32
    svg.rect(cx_left - 16, y0 - 20, cx_right - cx_left + 32, step * 20 + 8, fill="#eaeef2")
    relay_benches = sorted({b.name for b in benches for s in b.slots
                            if s.power.get("kind") == "gpio"})
    for pin, what in sorted(HEADER.items()):
        row = (pin - 1) // 2
        left = pin % 2 == 1
        cx = cx_left if left else cx_right
        cy = y0 + row * step
        if isinstance(what, str):
            kind, name, note = what, what, {"3V3": "3.3 V supply", "5V": "5 V supply",
                                            "GND": "ground"}[what]
            if pin == 1 and relay_benches:
                note += f": relay module VCC ({', '.join(relay_benches)})"
        else:
            name = f"GPIO{what}"
            used = roles.get(what)
            if used:
                kind = "solenoid" if any(r.startswith("solenoid") for r in used) else "relay"
                note = "; ".join(f"{role} ({', '.join(sorted(b))})"
                                 for role, b in sorted(used.items()))
                note += f" · boot pull-{boot_pull(what)}"
            elif what in RESERVED:
                kind, note = "reserved", f"reserved: {RESERVED[what]}"
            elif what in KEPT_FREE:
                kind, note = "free", KEPT_FREE[what]
            else:
                kind, note = "unused", f"unused · boot pull-{boot_pull(what)}"
        svg.add("circle", cx=cx, cy=cy, r=11, fill=colours[kind], stroke=INK, stroke_width=1)
        svg.text(cx, cy + 4, str(pin), size=10, anchor="middle", weight="bold", fill="#ffffff")
        if left:
            svg.text(cx - 20, cy + 4, name, size=12, anchor="end", weight="bold")
            svg.text(cx - 90, cy + 4, note, size=10, anchor="end", fill=MUTED)
        else:
            svg.text(cx + 20, cy + 4, name, size=12, weight="bold")
            svg.text(cx + 90, cy + 4, note, size=10, fill=MUTED)
    ly = y0 + 20 * step + 10
    svg.rect(30, ly, width - 60, 76, fill="#ffffff", stroke=MUTED)
    svg.text(42, ly + 18, "Legend", weight="bold")
    entries = [("solenoid", "solenoid MOSFET gate (active-high)"),
               ("relay", "camera relay input (active-low)"), ("reserved", "never driven"),
               ("free", "kept free / spare"), ("unused", "unused GPIO"),
               ("3V3", "3.3 V supply"), ("5V", "5 V supply"), ("GND", "ground")]
    for k, (kind, text) in enumerate(entries):
        ex, ey = 42 + (k % 4) * 260, ly + 40 + (k // 4) * 22
        svg.add("circle", cx=ex + 6, cy=ey - 4, r=6, fill=colours[kind], stroke=INK,
                stroke_width=1)
        svg.text(ex + 18, ey, text, size=11)
    return svg.render()


# --- schematic: one solenoid channel -------------------------------------------------------------
def _resistor_h(svg: Svg, x: int, y: int, label: str) -> None:
    """Horizontal resistor (IEC box) from x to x+60 at height y."""
    svg.line([(x, y), (x + 12, y)], "signal")
    svg.rect(x + 12, y - 7, 36, 14, fill="#ffffff", rx=1)
    svg.line([(x + 48, y), (x + 60, y)], "signal")
    svg.text(x + 30, y - 12, label, size=11, anchor="middle")


def _resistor_v(svg: Svg, x: int, y: int, label: str, kind: str = "signal") -> None:
    """Vertical resistor from y to y+60 at x."""
    svg.line([(x, y), (x, y + 12)], kind)
    svg.rect(x - 7, y + 12, 14, 36, fill="#ffffff", rx=1)
    svg.line([(x, y + 48), (x, y + 60)], kind)
    svg.text(x + 12, y + 34, label, size=11)


def _ground(svg: Svg, x: int, y: int) -> None:
    svg.line([(x - 14, y), (x + 14, y)], "gnd")
    svg.line([(x - 9, y + 5), (x + 9, y + 5)], "gnd")
    svg.line([(x - 4, y + 10), (x + 4, y + 10)], "gnd")


def _fuse(svg: Svg, x: int, y: int, label: str, kind: str = "supply") -> None:
    """Horizontal fuse from x to x+60."""
    svg.line([(x, y), (x + 12, y)], kind)
    svg.rect(x + 12, y - 6, 36, 12, fill="#ffffff", rx=1)
    svg.line([(x + 12, y), (x + 48, y)], kind, width=1)
    svg.line([(x + 48, y), (x + 60, y)], kind)
    svg.text(x + 30, y - 11, label, size=11, anchor="middle")


def _diode_up(svg: Svg, x: int, y_bottom: int, y_top: int) -> None:
    """Diode with the anode at the bottom and the cathode (bar) at the top."""
    mid = (y_bottom + y_top) // 2
    svg.line([(x, y_bottom), (x, mid + 10)], "sol")
    svg.add("polygon", points=f"{x - 10},{mid + 10} {x + 10},{mid + 10} {x},{mid - 8}",
            fill="#ffffff", stroke=INK, stroke_width=1.5)
    svg.line([(x - 10, mid - 8), (x + 10, mid - 8)], "gnd", width=2.5)
    svg.line([(x, mid - 8), (x, y_top)], "supply")


def driver_diagram(bench: BenchData) -> str:
    gpio_buttons = [s for s in bench.slots if s.button and s.button["kind"] == "gpio"]
    pin = gpio_buttons[0].button["pin"] if gpio_buttons else 17
    width, height = 1000, 690
    svg = Svg(width, height, "rig: solenoid driver, one channel",
              "Generated by hardware/diagrams/make_diagrams.py. Low-side logic-level MOSFET "
              "with gate resistor, gate pull-down and flyback diode across the solenoid coil, "
              "driven through a CMOS 555 one-shot that caps the on-time in hardware.")
    svg.text(30, 34, "Solenoid driver: one channel (repeat per slot)", size=20, weight="bold")
    svg.text(30, 56, f"Drawn for slot {gpio_buttons[0].name if gpio_buttons else '1'} of "
                     f"{bench.file}: {pin_label(pin)}. Every GPIO solenoid channel is identical.",
             size=12, fill=MUTED)
    rail_y, gnd_y = 120, 500
    coil_x, diode_x, gate_y = 560, 680, 400
    # +12 V rail with fuse
    svg.rect(30, rail_y - 22, 150, 44, fill=FILL["psu"])
    svg.text(40, rail_y - 4, "12 V solenoid PSU", size=11, weight="bold")
    svg.text(40, rail_y + 12, "+12 V   (− to GND)", size=11)
    svg.line([(180, rail_y), (240, rail_y)], "supply")
    _fuse(svg, 240, rail_y, "F_SOL (rail fuse, power.md)")
    svg.line([(300, rail_y), (diode_x, rail_y)], "supply")
    svg.text(310, rail_y + 18, "+12 V solenoid rail", size=11, fill=MUTED)
    svg.dot(coil_x, rail_y)
    # solenoid coil
    svg.line([(coil_x, rail_y), (coil_x, 170)], "supply")
    svg.rect(coil_x - 16, 170, 32, 90, fill="#ffffff")
    for k in range(4):
        svg.add("path", d=f"M {coil_x - 16} {182 + 20 * k} q 22 10 0 20", fill="none",
                stroke=INK, stroke_width=1.2)
    svg.text(coil_x - 26, 200, "SOL", size=12, anchor="end", weight="bold")
    svg.text(coil_x - 26, 216, "12 V push solenoid", size=11, anchor="end")
    svg.text(coil_x - 26, 232, "100 % duty rating", size=11, anchor="end")
    svg.line([(coil_x, 260), (coil_x, 310)], "sol")
    svg.dot(coil_x, 290)
    # flyback diode across the coil
    svg.line([(coil_x, 290), (diode_x, 290)], "sol")
    _diode_up(svg, diode_x, 290, rail_y)
    svg.dot(diode_x, rail_y)
    svg.text(diode_x + 16, 196, "D  1N4007 / SS14", size=12, weight="bold")
    svg.text(diode_x + 16, 212, "cathode (bar) to +12 V,", size=11)
    svg.text(diode_x + 16, 226, "fitted at the solenoid", size=11)
    svg.text(coil_x + 8, 304, "drain", size=10, fill=MUTED)
    # MOSFET (simplified enhancement N-channel symbol)
    svg.line([(coil_x, 310), (coil_x, 370), (coil_x - 14, 370)], "sol")
    svg.line([(coil_x - 14, 366), (coil_x - 14, 434)], "gnd", width=2.5)
    svg.line([(coil_x - 24, 372), (coil_x - 24, 428)], "gnd", width=2)
    svg.line([(coil_x - 14, 430), (coil_x, 430), (coil_x, gnd_y)], "gnd")
    svg.add("polygon", points=f"{coil_x - 14},400 {coil_x - 4},395 {coil_x - 4},405",
            fill=INK)
    svg.line([(coil_x - 14, 400), (coil_x, 400), (coil_x, 430)], "gnd", width=1.2)
    svg.text(coil_x + 12, 392, "Q  AO3400A", size=12, weight="bold")
    svg.text(coil_x + 12, 408, "N-MOSFET, SOT-23, 30 V", size=11)
    svg.text(coil_x + 12, 424, "RDS(on) < 48 mΩ at VGS 2.5 V", size=11)
    svg.text(coil_x + 8, 448, "source", size=10, fill=MUTED)
    # gate network
    svg.rect(30, gate_y - 26, 150, 52, fill=FILL["pi"])
    svg.text(40, gate_y - 8, "Raspberry Pi", size=11, weight="bold")
    svg.text(40, gate_y + 8, pin_label(pin), size=11)
    svg.text(40, gate_y + 22, "active-high, boot pull-down", size=9, fill=MUTED)
    svg.line([(180, gate_y), (200, gate_y)], "signal")
    # the hardware cap: a CMOS 555 one-shot (solenoid-driver.md, "Hardware cap")
    svg.rect(200, gate_y - 56, 150, 120, fill=FILL["note"])
    timer = [("U1  TLC555 one-shot", "bold"), ("GPIO → RESET (pin 4)", ""),
             ("RIN 100 kΩ GPIO → GND", ""),
             ("GPIO → 100 kΩ → TRIG (2)", ""), ("TRIG → 100 nF → GND", ""),
             ("RX 12 MΩ, CX 4.7 µF film", ""), ("T = 1.1·RX·CX ≈ 62 s", "bold")]
    for k, (line, weight) in enumerate(timer):
        svg.text(208, gate_y - 38 + 15 * k, line, size=10, weight=weight or "normal")
    svg.line([(350, gate_y), (360, gate_y)], "signal")
    _resistor_h(svg, 360, gate_y, "RG 100 Ω")
    svg.line([(420, gate_y), (coil_x - 24, gate_y)], "signal")
    svg.dot(460, gate_y)
    _resistor_v(svg, 460, gate_y, "RPD 10 kΩ", "gnd")
    svg.line([(460, gate_y + 60), (460, gnd_y)], "gnd")
    svg.text(490, gate_y - 8, "gate", size=10, fill=MUTED)
    # ground
    svg.line([(100, gnd_y), (diode_x + 40, gnd_y)], "gnd")
    svg.dot(460, gnd_y)
    svg.dot(coil_x, gnd_y)
    _ground(svg, diode_x + 40, gnd_y)
    svg.line([(100, gate_y + 26), (100, gnd_y)], "gnd")
    svg.text(108, gnd_y - 8, "Pi GND (pin 9) = PSU − = MOSFET source: one common 0 V",
             size=11)
    cap = bench.bench.get("solenoid_max_on_seconds", 45)
    svg.legend(width - 262, 256, ["signal", "supply", "sol", "gnd"], 240)
    notes = [
        "Pin low, floating (lgpio released it, rig not running) or Pi off: U1 is reset or "
        "unpowered, RPD holds the gate at 0 V, Q is off, the solenoid is released.",
        "Hardware cap: U1's output falls T ≈ 62 s (54-71 s) after the pin rose, even if the pin "
        "stays high (rig and its guardian killed,",
        "Pi hung, a kernel that keeps a released line's level); the pin going low ends the press "
        "at once; a new press needs a new rising edge.",
        "RG limits the gate-charge current the GPIO supplies (3.3 V / 100 Ω ≈ 33 mA peak) "
        "and damps ringing on the gate lead.",
        "At turn-off the coil current (≈ 1 A) circulates through D for a few ms; without D the "
        "drain spike exceeds the 30 V rating.",
        f"Software: rig refuses a press longer than {cap:g} s (bench.solenoid_max_on_seconds), "
        "a watchdog releases at the cap, cool-down = on-time.",
    ]
    svg.rect(30, 540, width - 60, 22 + 18 * len(notes), fill=FILL["note"], stroke=MUTED)
    for k, note in enumerate(notes):
        svg.text(42, 560 + 18 * k, note, size=11)
    return svg.render()


# --- schematic: an active-low relay module channel on the camera's 12 V --------------------------
def relay_diagram(bench: BenchData) -> str:
    gpio_power = [s for s in bench.slots if s.power["kind"] == "gpio"]
    pin = gpio_power[0].power["pin"] if gpio_power else 4
    width, height = 1000, 640
    svg = Svg(width, height, "rig: opto-isolated relay module channel switching camera 12 V",
              "Generated by hardware/diagrams/make_diagrams.py. Active-low input powered from "
              "the Pi's 3.3 V, JD-VCC jumper removed, coil on its own 5 V, camera +12 V "
              "through the normally-open contact.")
    svg.text(30, 34, "Camera power: one channel of an active-low relay module", size=20,
             weight="bold")
    svg.text(30, 56, f"Drawn for slot {gpio_power[0].name if gpio_power else '1'} of "
                     f"{bench.file}: {pin_label(pin)}, active_high = false.",
             size=12, fill=MUTED)
    # Pi
    svg.rect(30, 100, 190, 200, fill=FILL["pi"])
    svg.text(40, 122, "Raspberry Pi", weight="bold")
    rows = [("3V3 · pin 1", 150), (pin_label(pin), 200), ("GND · pin 9", 250)]
    for label, y in rows:
        svg.text(212, y + 4, label, size=11, anchor="end")
        svg.dot(220, y)
    # module, input side
    mx = 330
    svg.rect(mx, 90, 330, 330, fill=FILL["relay"])
    svg.text(mx + 10, 110, "relay module, one channel (SRD-05VDC-SL-C)", size=12, weight="bold")
    svg.line([(220, 150), (mx + 40, 150)], "supply")
    svg.text(mx + 46, 154, "VCC", size=11)
    svg.line([(220, 200), (mx + 40, 200)], "signal")
    svg.text(mx + 46, 204, "IN1", size=11)
    svg.line([(220, 250), (mx + 40, 250)], "gnd")
    svg.text(mx + 46, 254, "GND", size=11)
    # opto LED path drawn inside: VCC -> 1k -> LED -> IN
    ox = mx + 120
    svg.line([(ox, 150), (ox, 160)], "supply")
    svg.rect(ox - 6, 160, 12, 26, fill="#ffffff", rx=1)
    svg.text(ox + 10, 178, "1 kΩ", size=10)
    svg.add("polygon", points=f"{ox - 8},192 {ox + 8},192 {ox},204", fill="#ffffff",
            stroke=INK, stroke_width=1.2)
    svg.line([(ox - 8, 204), (ox + 8, 204)], "gnd", width=1.5)
    svg.text(ox + 12, 202, "opto LED", size=10)
    svg.line([(ox, 186), (ox, 192)], "supply", width=1.2)
    svg.line([(ox, 204), (ox, 214), (mx + 40, 214), (mx + 40, 200)], "signal", width=1.2)
    svg.text(mx + 46, 232, "IN low → LED lit → relay on (active-low)", size=10, fill=MUTED)
    svg.text(mx + 46, 278, "IN high / floating / pulled up → off", size=10, fill=MUTED)
    # jumper removed
    svg.rect(mx + 200, 136, 110, 40, fill="#ffffff", dash="4 3", stroke="#cf222e")
    svg.text(mx + 206, 152, "JD-VCC jumper", size=10, fill="#cf222e")
    svg.text(mx + 206, 168, "REMOVED", size=10, weight="bold", fill="#cf222e")
    # coil supply
    svg.rect(30, 330, 190, 70, fill=FILL["psu"])
    svg.text(40, 352, "5 V coil supply", size=11, weight="bold")
    svg.text(40, 368, "(own supply or 12→5 V buck", size=10)
    svg.text(40, 382, "on the camera rail)", size=10)
    svg.line([(220, 350), (mx + 40, 350)], "supply")
    svg.text(mx + 46, 354, "JD-VCC", size=11)
    svg.line([(220, 385), (mx + 40, 385)], "gnd")
    svg.text(mx + 46, 389, "GND (coil side)", size=11)
    svg.text(mx + 150, 372, "coil ≈ 70 mA at 5 V", size=10, fill=MUTED)
    # contacts
    cx = mx + 330
    svg.text(cx - 8, 304, "COM", size=11, anchor="end")
    svg.text(cx - 8, 334, "NO", size=11, anchor="end")
    svg.text(cx - 8, 364, "NC", size=11, anchor="end")
    for y in (300, 330, 360):
        svg.dot(cx, y)
    svg.text(cx - 8, 384, "NC: leave unconnected", size=10, anchor="end", fill=MUTED)
    # 12 V camera supply -> fuse -> COM ; NO -> camera + ; camera - -> supply -
    svg.rect(730, 100, 230, 60, fill=FILL["psu"])
    svg.text(740, 122, "12 V camera supply", size=11, weight="bold")
    svg.text(740, 140, "+12 V (left) · 0 V (right)", size=10)
    svg.line([(cx, 300), (700, 300)], "cam")
    _fuse(svg, 700, 300, "F_CAM 1 A slow", kind="cam")
    svg.line([(760, 300), (800, 300), (800, 160)], "cam")
    svg.rect(760, 420, 200, 60, fill=FILL["slot"], stroke=MUTED)
    svg.text(770, 442, "12 V DC camera", size=11, weight="bold")
    svg.text(770, 460, "+12 V in (left) · 0 V (right)", size=10)
    svg.line([(cx, 330), (720, 330), (720, 400), (790, 400), (790, 420)], "cam")
    svg.line([(930, 420), (930, 160)], "gnd")
    svg.legend(30, 420, ["signal", "supply", "cam", "gnd"], 260)
    notes = [
        "Idle, rig stopped, Pi booting (pin pulled up) or Pi off (VCC gone): no LED current, "
        "contact open, camera unpowered.",
        "VCC from the Pi's 3.3 V so that a high GPIO fully turns the LED off; the coil current "
        "stays on JD-VCC, away from the Pi's supply.",
        "lgpio briefly drives the pin low when rig claims it (gpio-serial.md §0 item 4): "
        "a short 'on' pulse at start-up. See relay-boards.md.",
    ]
    svg.rect(30, 540, width - 60, 22 + 18 * len(notes), fill=FILL["note"], stroke=MUTED)
    for k, note in enumerate(notes):
        svg.text(42, 560 + 18 * k, note, size=11)
    return svg.render()


# --- driver --------------------------------------------------------------------------------------
def build_all(bench_dir: Path = BENCH_DIR) -> dict[str, str]:
    """File name -> SVG text for every diagram."""
    benches = [read_bench(bench_dir / name) for name in BENCH_FILES]
    out = {f"wiring-{b.file.removesuffix('.toml')}.svg": bench_diagram(b) for b in benches}
    by_name = {b.file: b for b in benches}
    out["header-pinmap.svg"] = header_diagram(benches)
    out["solenoid-driver.svg"] = driver_diagram(by_name["poe-gpio-8.toml"])
    out["relay-module.svg"] = relay_diagram(by_name["dc-gpio-4.toml"])
    return dict(sorted(out.items()))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=HERE, help="output directory (default: here)")
    parser.add_argument("--benches", type=Path, default=BENCH_DIR,
                        help="directory holding the example bench files")
    parser.add_argument("--check", action="store_true",
                        help="write nothing; exit 1 if any SVG in --out differs")
    args = parser.parse_args(argv)
    diagrams = build_all(args.benches)
    stale = []
    for name, text in diagrams.items():
        path = args.out / name
        if args.check:
            if not path.exists() or path.read_text(encoding="utf-8") != text:
                stale.append(name)
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        print(f"wrote {path}")
    if stale:
        print("stale or missing (run make_diagrams.py and commit): " + ", ".join(stale),
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
