"""The test oned: a small XML-RPC server that answers like OpenNebula's oned
7.4.0 for the methods the stratuslab.cloud collection uses.

It is NOT OpenNebula. It is the project's own test double, written from the
reference data in tests/fixtures/opennebula, so that the collection's client
code and modules can be tested where OpenNebula cannot be installed. Run it
with ``python3 -m stratuslab_test_oned``; docs/test-oned.md describes the
command line, the methods and the known differences."""

__version__ = "1.0.0"
