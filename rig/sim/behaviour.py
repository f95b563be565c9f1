"""How a simulated unit of a firmware family presents itself: the ``[sim]`` table of its
profile file (firmware_notes/profiles/<name>.toml).

Why apart from rig.camera.profiles.FirmwareProfile: these are the things real units vary in
that the controller must accept in every variant (the sample identity a unit reports, to whom
and in which layout it answers SADP, which status and namespace its ISAPI errors carry). The
profiles spread the variants over the families so that the simulator exercises each branch of
the controller; the controller itself never reads them, so they are not in its profile.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

from rig.camera.profiles import SIM_TABLE, FirmwareProfile, profiles_dir, read_profile_file
from rig.tomltable import TomlTable

REPLY_STYLES = ("multicast", "unicast")
SADP_LAYOUTS = ("lf", "tabs", "crlf", "compact")


@dataclass(frozen=True)
class SimBehaviour:
    """One family's simulated presentation (the profile file's ``[sim]`` table)."""

    sample_firmware: str                      # SoftwareVersion the simulator reports
    sample_dsp: str
    sample_model: str
    device_type: str                          # SADP DeviceType code
    sadp_reply: tuple[str, ...]               # "multicast", "unicast" or both
    sadp_writes_flase: bool
    sadp_layout: str
    sadp_omit: tuple[str, ...]                # ProbeMatch elements this firmware does not send
    inactive_http_status: int                 # what ISAPI answers before activation (401 or 403)
    isapi_namespace: str


def load_behaviour(path: Path) -> SimBehaviour:
    """The ``[sim]`` table of the profile file ``path``; ProfileError naming file and key."""
    top = read_profile_file(path)
    t = top.sub(SIM_TABLE, None) or TomlTable(path, SIM_TABLE, {}, top.error)
    reply = t.choices("sadp_reply", REPLY_STYLES)
    if not reply:
        raise t.fail("sadp_reply", "name at least one of multicast, unicast")
    status = t.get("inactive_http_status", int, what="401 or 403")
    if status not in (401, 403):
        raise t.fail("inactive_http_status", "must be 401 or 403")
    behaviour = SimBehaviour(
        sample_firmware=t.get("sample_firmware", str), sample_dsp=t.get("sample_dsp", str),
        sample_model=t.get("sample_model", str), device_type=t.get("device_type", str),
        sadp_reply=reply, sadp_writes_flase=t.get("sadp_writes_flase", bool,
                                                  what="true or false"),
        sadp_layout=t.choice("sadp_layout", SADP_LAYOUTS), sadp_omit=t.texts("sadp_omit", ()),
        inactive_http_status=status, isapi_namespace=t.get("isapi_namespace", str))
    t.done()
    return behaviour


_cache: dict[tuple[Path, int], SimBehaviour] = {}
_cache_lock = threading.Lock()


def behaviour_for(profile: FirmwareProfile) -> SimBehaviour:
    """The simulated presentation of ``profile``'s family, from the file it was loaded from
    (or the shipped file of that name). Read once per file version."""
    path = profile.source or profiles_dir() / f"{profile.name}.toml"
    try:
        key = (path, path.stat().st_mtime_ns)
    except OSError:
        key = (path, 0)
    with _cache_lock:
        found = _cache.get(key)
    if found is None:
        found = load_behaviour(path)
        with _cache_lock:
            _cache[key] = found
    return found
