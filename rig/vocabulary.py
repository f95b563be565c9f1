"""The closed sets of words rig uses, each once: reset methods, identity strategies, expected
states, output kinds, verdicts, faults, step outcomes, run and unit states, evidence kinds.

Why one module: these words cross every layer (bench file, procedures, judge, records, reports,
CLI, simulator). Written as string literals in several files they drift apart: a message that
names a bench-file key the loader rejects, a choice list the driver outgrew. Here each set is a
``StrEnum``, so a member compares equal to its text (records and JSON keep the plain words) and
a typo is an AttributeError at import, not a silent mismatch at run time.

This module imports nothing from rig: anything may import it, including the storage layer and
the simulator.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from types import MappingProxyType


class Method(enum.StrEnum):
    """How a unit is reset (the bench file's ``[defaults] method``, ``rig run --method``)."""

    AUTO = "auto"              # the web reset when the admin password works, else the button
    HARD = "hard"              # button held through power-up
    POE_CYCLE = "poe-cycle"    # a plain power cycle (a reboot, not a reset)
    WEB_BASIC = "web-basic"    # ISAPI factoryReset mode=basic ("Restore": keeps network, users)
    WEB_FULL = "web-full"      # ISAPI factoryReset mode=full ("Default": everything)


class IdentityStrategy(enum.StrEnum):
    """How the bench reaches one unit's web server when all answer on 192.168.1.64."""

    SERIALISED = "serialised"            # one unit powered on the shared address at a time
    IPV6_LINK_LOCAL = "ipv6-link-local"  # fe80:: + EUI-64 of the SADP MAC, scoped to the NIC
    VLAN = "vlan"                        # the slot's own VLAN through <interface>.<vid>


class RouteKind(enum.StrEnum):
    """Why an HTTP route reaches one unit: a strategy, or an address the unit has alone."""

    SERIALISED = IdentityStrategy.SERIALISED.value
    IPV6_LINK_LOCAL = IdentityStrategy.IPV6_LINK_LOCAL.value
    VLAN = IdentityStrategy.VLAN.value
    OWN_ADDRESS = "own-address"          # no other unit of the bench answers there


class ResetMode(enum.StrEnum):
    """ISAPI ``factoryReset`` modes (the web page's Restore and Default)."""

    BASIC = "basic"
    FULL = "full"


class ExpectedState(enum.StrEnum):
    """What a reset must leave behind; the judge checks the unit against it."""

    FULL = "full"      # everything back to the factory: button, web-full
    BASIC = "basic"    # web "Restore": network and users kept, parameters reset


class PowerKind(enum.StrEnum):
    """What switches a slot's power (the bench file's ``power.kind``)."""

    GPIO = "gpio"      # a relay channel on a Raspberry Pi GPIO pin
    RELAY = "relay"    # a channel of a USB-serial relay board
    POE = "poe"        # a port of a managed PoE switch, over SNMP


#: What may drive a reset-button solenoid (a PoE port cannot).
BUTTON_KINDS: tuple[PowerKind, ...] = (PowerKind.GPIO, PowerKind.RELAY)


class OutputKind(enum.StrEnum):
    """Entries of the outputs ledger: an output the rig moved away from its rest state."""

    SOLENOID_ON = "solenoid-on"
    POWER_ON = "power-on"
    POWER_OFF = "power-off"
    POE_PORT_OFF = "poe-port-off"
    POE_PORT_ON = "poe-port-on"
    LEFT_ENGAGED = "left-engaged"    # ``rig safe`` could not rest it: someone must look

    @classmethod
    def off_for(cls, power: PowerKind) -> OutputKind:
        """The ledger kind for cutting a slot's power of kind ``power``."""
        return cls.POE_PORT_OFF if power is PowerKind.POE else cls.POWER_OFF

    @classmethod
    def on_for(cls, power: PowerKind) -> OutputKind:
        """The ledger kind for applying a slot's power of kind ``power``."""
        return cls.POE_PORT_ON if power is PowerKind.POE else cls.POWER_ON


class RunStatus(enum.StrEnum):
    RUNNING = "running"
    PASSED = "passed"              # every unit that was tried is at factory defaults
    FAILED = "failed"              # at least one unit is not, or could not be proven
    INTERRUPTED = "interrupted"    # the rig stopped without closing the run (crash, kill, power)
    ABORTED = "aborted"            # stopped on purpose (operator, signal) and closed as such


class UnitState(enum.StrEnum):
    PENDING = "pending"            # planned, not started
    RUNNING = "running"
    DONE = "done"                  # has a verdict
    INTERRUPTED = "interrupted"    # the run ended before it had one


class Verdict(enum.StrEnum):
    """A unit's final verdict: the state proven at the end of its job, or why none was."""

    FACTORY_DEFAULT = "factory-default"    # proven back at factory defaults (and left there)
    PROVISIONED = "provisioned"            # proven reset, then handed over and proven set up
    HANDOVER_FAILED = "handover-failed"    # proven reset, but the hand-over did not finish
    NOT_DEFAULT = "not-default"
    UNREACHABLE = "unreachable"
    BENCH_FAULT = "bench-fault"
    INTERRUPTED = "interrupted"
    SKIPPED = "skipped"
    OUT_OF_SERVICE = "out-of-service"


#: Verdicts of a unit that did what the bench asked of it.
PASSING_VERDICTS = frozenset({Verdict.FACTORY_DEFAULT, Verdict.PROVISIONED})


class FinalState(enum.StrEnum):
    """The state a unit leaves the bench in (the bench file's ``[handover] final_state``)."""

    FACTORY = "factory"                            # inactive, exactly as verified
    PROVISIONED = "provisioned"                    # activated, set up, proven so
    FACTORY_AFTER_CHECKS = "factory-after-checks"  # activated and checked, then reset again


class Fault(enum.StrEnum):
    """Whose side failed (LAVA's infrastructure versus device split)."""

    NONE = "none"
    BENCH = "bench"                # the rig's side failed: slot health counts these
    UNIT = "unit"                  # the camera's side


class StepOutcome(enum.StrEnum):
    RUNNING = "running"
    OK = "ok"
    FAILED = "failed"
    TIMEOUT = "timeout"
    SKIPPED = "skipped"
    INTERRUPTED = "interrupted"


class EvidenceKind(enum.StrEnum):
    """Kinds of recorded evidence: facts seen, never a decision (except ``verdict``, and the
    judge's ``finding`` that an ``http`` record carries beside its facts)."""

    SADP_BEFORE = "sadp-before"
    SADP_AFTER = "sadp-after"
    IDENTITY = "identity"
    IDENTITY_STRATEGY = "identity-strategy"
    HTTP_ROUTE = "http-route"
    HTTP = "http"
    USER_CHECK = "user-check"
    FACTORY_RESET = "factory-reset"
    REBOOT = "reboot"
    ACTIVATION = "activation"
    HANDOVER = "handover"
    NETWORK = "network"
    CHECK = "check"                # one functional check's result and what it saw
    SNAPSHOT = "snapshot"          # a snapshot's measurements and thumbnail (image: attachments)
    TEST_RESULT = "test-result"    # a QA team's test run on the unit (rig's pytest plugin)
    VERDICT = "verdict"


#: The fault a verdict implies when the caller names none.
DEFAULT_FAULT: Mapping[Verdict, Fault] = MappingProxyType({
    Verdict.FACTORY_DEFAULT: Fault.NONE, Verdict.PROVISIONED: Fault.NONE,
    Verdict.HANDOVER_FAILED: Fault.UNIT, Verdict.NOT_DEFAULT: Fault.UNIT,
    Verdict.UNREACHABLE: Fault.UNIT, Verdict.BENCH_FAULT: Fault.BENCH,
    Verdict.INTERRUPTED: Fault.NONE, Verdict.SKIPPED: Fault.NONE,
    Verdict.OUT_OF_SERVICE: Fault.BENCH,
})


def choices(words: type[enum.StrEnum] | tuple[enum.StrEnum, ...]) -> tuple[str, ...]:
    """The plain texts of a set of words, in order (for argparse ``choices`` and messages)."""
    return tuple(str(w) for w in words)


class ReportFormat(enum.StrEnum):
    """What ``rig report`` writes a run as (rig.report.render)."""

    CSV = "csv"      # one row per unit
    JSON = "json"    # the whole record
    HTML = "html"    # one self-contained page


class GuardianWord(enum.StrEnum):
    """The lines a rig command and its guardian process exchange (rig.guardian)."""

    READY = "ready"    # guardian → command: the bench is loaded; outputs may move now
    DONE = "done"      # command → guardian: a clean exit; touch nothing and stop


class NetMethod(enum.StrEnum):
    """How ``rig net set`` gave a unit its network settings."""

    SADP_UPDATE = "sadp-update"     # SADP ``update`` by MAC (works while all share .64)
    ISAPI = "isapi"                 # PUT ipAddress over the unit's identity route (fallback)


class NetOutcome(enum.StrEnum):
    """What became of one unit's network setting (``NetResult.outcome``)."""

    CONFIRMED = "confirmed"           # a fresh census shows the new settings, HTTP answers there
    WRONG_PASSWORD = "wrong-password"  # the unit refused the password (one attempt spent)
    BUDGET_SPENT = "budget-spent"     # not sent: one more failure could lock ``update``
    LOCKED = "locked"                 # the unit says ``update`` is locked
    REFUSED = "refused"               # the unit refused the settings (Result denied)
    NO_REPLY = "no-reply"             # no answer to the request (counted as an attempt)
    NOT_CONFIRMED = "not-confirmed"   # accepted, but the census does not show the new settings
    NO_HTTP = "no-http"               # the census shows them; HTTP does not answer there
    UNSUPPORTED = "unsupported"       # neither SADP update nor a usable ISAPI route
    NOT_FOUND = "not-found"           # the MAC did not answer SADP before the change
    ERROR = "error"                   # an unreadable reply, a socket or HTTP error


class LampState(enum.StrEnum):
    """SADP ``lamp`` actions: the LED blinks (``open``) or stops (``close``)."""

    OPEN = "open"
    CLOSE = "close"


class LocateOutcome(enum.StrEnum):
    """What ``rig locate`` achieved (``LocateResult.outcome``)."""

    DONE = "done"                 # the unit answered success: its LED blinks (or stopped)
    UNSUPPORTED = "unsupported"   # the family has no SADP lamp: power-cycle the slot instead
    NO_REPLY = "no-reply"         # the unit did not answer the lamp request
    FAILED = "failed"             # it answered, but not success
    ERROR = "error"               # sockets, or a reply that cannot be read


class CheckName(enum.StrEnum):
    """The functional checks (issue "functional checks"): what a reset unit is tested for."""

    DEVICE_INFO = "device-info"
    SNAPSHOT = "snapshot"
    RTSP = "rtsp"
    IR_CUT = "ir-cut"
    STORAGE = "storage"
    FIRMWARE_BASELINE = "firmware-baseline"
    CLOUD = "cloud"


class CheckOutcome(enum.StrEnum):
    """A check's result. ``unknown`` (the unit would not say) is never a pass; ``skipped`` is
    for a unit that does not have the function (no IR-cut filter) or a bench that ignores it."""

    PASSED = "passed"
    FAILED = "failed"
    UNKNOWN = "unknown"
    SKIPPED = "skipped"


class Grade(enum.StrEnum):
    """R2v3-style functional category of a unit, from its check results."""

    FULLY_FUNCTIONAL = "fully-functional"
    KEY_FUNCTIONS_TESTED = "key-functions-tested"
    NOT_FUNCTIONAL = "not-functional"


class StoragePolicy(enum.StrEnum):
    """What the bench does with a memory card found in a unit."""

    FORMAT = "format"      # format it and wait for the status
    FLAG = "flag"          # a card present fails: "remove the card"
    IGNORE = "ignore"      # not looked at (the certificate says "not checked")


class SanitizationCategory(enum.StrEnum):
    """NIST SP 800-88 categories; a camera's configuration reset is at most ``Clear``."""

    CLEAR = "Clear"
    PURGE = "Purge"
    DESTROY = "Destroy"


class Destination(enum.StrEnum):
    """Where a certified unit goes next (NIST SP 800-88 Appendix G "destination")."""

    RESALE = "resale"
    REUSE = "reuse"
    RECYCLING = "recycling"


class NotifyEvent(enum.StrEnum):
    """What a webhook is told about (the bench file's ``[[notify.webhook]] events``). Each is
    written to the record store's outbox in the transaction that records it (rig.notify)."""

    RUN_FINISHED = "run-finished"                # a run closed: passed, failed or interrupted
    BENCH_FAULT = "bench-fault"                  # a unit's verdict blamed the bench
    SLOT_OUT_OF_SERVICE = "slot-out-of-service"  # at the bench-fault limit, or by an operator


class DeliveryState(enum.StrEnum):
    """Where one event stands with one webhook."""

    PENDING = "pending"        # waiting for its first attempt or its next retry
    SENDING = "sending"        # claimed by a sender until its lease ends
    DELIVERED = "delivered"    # the receiver answered 2xx: never sent to it again


class WebhookFormat(enum.StrEnum):
    """The body a webhook receives."""

    JSON = "json"              # the event document itself
    SLACK = "slack"            # {"text": ...}: Slack, Mattermost, Rocket.Chat incoming webhooks


class BenchFaultKind(enum.StrEnum):
    """What part of the bench failed, for a bench-fault verdict's check (and the metric
    ``rig_bench_faults_total{kind}``)."""

    SNMP = "snmp"              # the PoE switch: no answer, refused, or a SET that did not hold
    SERIAL = "serial"          # a USB-serial relay board: gone, busy, or a wrong reply
    GPIO = "gpio"              # a GPIO pin or chip
    ACTUATOR = "actuator"      # another driver failure (a solenoid's watchdog, an output)
    SETUP = "setup"            # the bench cannot do what was asked (no solenoid, press over cap)
    INTERNAL = "internal"      # a bug in rig: the slot's worker failed


class FindingLevel(enum.StrEnum):
    """How a ``rig doctor`` finding stands: the bench part is fine, deserves a look, or would
    fail a run (exit 1)."""

    OK = "ok"
    WARN = "warn"
    FAIL = "fail"


class DoctorArea(enum.StrEnum):
    """The parts of a bench ``rig doctor`` probes, in the order it reports them."""

    NETWORK = "network"
    RECORDS = "records"
    SWITCH = "switch"
    RELAY = "relay"
    GPIO = "gpio"
    UNITS = "units"
    CLOCK = "clock"


class StorageOutcome(enum.StrEnum):
    """What a certificate says of a unit's memory card, from the storage check's evidence."""

    FORMATTED = "formatted"          # a card was found and formatted, and the unit said so
    ABSENT = "absent"                # the unit reported no card
    CARD_PRESENT = "card-present"    # a card is there, not formatted (flagged, or the format
    #                                  failed): remove it; the certificate does not cover it
    UNKNOWN = "unknown"              # the check ran but the unit would not say
    NOT_CHECKED = "not-checked"      # no storage check ran, or the bench ignores cards


class CloudOutcome(enum.StrEnum):
    """What a certificate says of the unit's cloud (Hik-Connect) binding, from the cloud check."""

    UNBOUND = "unbound"              # the unit says it is bound to no account
    BOUND = "bound"                  # still bound to someone's account
    OFF = "off"                      # the unit's cloud service is off (binding not readable)
    UNKNOWN = "unknown"              # the check ran but the unit would not say
    NOT_CHECKED = "not-checked"      # no cloud check ran


class CertificateFormat(enum.StrEnum):
    """``rig certificate --format``: the signed JSON alone, or a PDF with the JSON beside it."""

    PDF = "pdf"
    JSON = "json"


class Paper(enum.StrEnum):
    """Page sizes a certificate PDF is laid out for."""

    A4 = "a4"
    LETTER = "letter"


class AuditOutcome(enum.StrEnum):
    """An independent re-verification of a certified unit (``rig audit record``)."""

    CONFIRMED = "confirmed"          # the auditor found the unit as its certificate says
    DISCREPANCY = "discrepancy"      # the auditor found something the certificate denies
    INCONCLUSIVE = "inconclusive"    # the unit could not be re-checked (gone, broken, …)


class SyncedTable(enum.StrEnum):
    """The record-store tables a bench pushes to the fleet's PostgreSQL (``rig sync``), in the
    order a batch writes them: a row's parents come before it. Attachments travel as metadata
    (name, type, SHA-256), never their bytes: the blobs stay on the bench."""

    RUNS = "runs"
    UNITS = "units"
    STEPS = "steps"
    EVIDENCE = "evidence"
    OUTPUTS = "outputs"
    SLOT_EVENTS = "slot_events"
    SLOT_PINS = "slot_pins"
    CERTIFICATES = "certificates"
    ATTACHMENTS = "attachments"
