"""The reference captures of oned 7.4.0, kept in the repository as test
fixtures (tests/fixtures/opennebula/samples-accounting-7.4.0, its README;
the project's test oned replays them too)."""

import json
import os

# The repository's fixtures (products/accounting/tests is three levels down).
FIXTURES = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                         "..", "..", "..", "tests", "fixtures", "opennebula"))
SAMPLES = os.path.join(FIXTURES, "samples-accounting-7.4.0")
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
