"""The reference captures of oned 7.4.0 (shared/opennebula/samples-accounting-7.4.0)."""

import json
import os



def _shared():
    """shared/opennebula beside the clone, or $STRATUSLAB_SHARED (as tests/unit/test_oned)."""
    env = os.environ.get("STRATUSLAB_SHARED")
    if env:
        return os.path.join(env, "opennebula") if os.path.isdir(os.path.join(env, "opennebula")) else env
    return os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "..", "..", "shared", "opennebula"))


SAMPLES = os.path.join(_shared(), "samples-accounting-7.4.0")
T0 = 1795465804


def payload(number_prefix):
    for name in sorted(os.listdir(SAMPLES)):
        if name.startswith(number_prefix) and name.endswith(".payload.xml"):
            with open(os.path.join(SAMPLES, name), encoding="utf-8") as fh:
                return fh.read()
    raise FileNotFoundError(number_prefix)


def timeline():
    with open(os.path.join(SAMPLES, "timeline.json"), encoding="utf-8") as fh:
        return json.load(fh)


def have_samples():
    return os.path.isdir(SAMPLES)
