"""Run ids: 12 hex digits of the sha256 of a point's canonical JSON (experiment, config, hardware).

The hardware-profile values a point names (``profile_fields``) are resolved and hashed with it, so
editing a profile's TOML gives new points instead of silently reusing results of the old hardware.
Smoke mode (``PCHW_SMOKE=1``) is part of the id: its toy-sized results never pass for real ones.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json

from pchw import smoke

from .grid import config_fields
from .registry import ExperimentError


def canonical(obj: object) -> str:
    """Compact JSON with sorted keys (the text that is hashed)."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)


def profile_values(config, module, cache: dict | None = None) -> dict[str, dict | None]:
    """Resolved hardware-profile values of the Config fields the module names in ``profile_fields``."""
    out: dict[str, dict | None] = {}
    names = config_fields(config)
    for name in getattr(module, "profile_fields", ()) or ():
        if name not in names:
            raise ExperimentError(f"profile_fields names {name!r}, which is not a Config field")
        value = getattr(config, name)
        if value is None:
            out[name] = None
            continue
        key = str(value)
        if cache is None or key not in cache:
            from pchw.profiles import load_profile

            resolved = json.loads(canonical(load_profile(value).values()))  # plain JSON values
            if cache is None:
                out[name] = resolved
                continue
            cache[key] = resolved
        out[name] = cache[key]
    return out


def run_id(config, module, *, _profiles: dict | None = None) -> str:
    """12 hex digits of the sha256 of the point's canonical JSON (experiment, config, profiles)."""
    profiles = _profiles if _profiles is not None else profile_values(config, module)
    payload = {"experiment": module.NAME, "config": dataclasses.asdict(config), "profiles": profiles}
    if smoke.enabled():
        payload["smoke"] = True
    return hashlib.sha256(canonical(payload).encode()).hexdigest()[:12]
