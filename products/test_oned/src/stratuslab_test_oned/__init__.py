"""The test oned: a small XML-RPC server that answers like OpenNebula's
oned 7.4.0.

This is NOT OpenNebula.  It is the project's own test double ("test oned"),
written from the reference data in tests/fixtures/opennebula (API.md and the
samples captured from a real oned 7.4.0), so that the collection's client
code and modules can be tested on machines where OpenNebula cannot be
installed.

It implements the XML-RPC methods listed in API.md (system, user, host,
cluster, virtual network, datastore) and those of the accounting capture
(group, VM, VM template, VM pool accounting and showback, ACL), with oned's
response envelope, error codes and messages, id numbering, XML shapes and
asynchronous states, plus a test clock (testoned.clock.*, NOT an oned
method).  See docs/test-oned.md for the command line, the modules and the
known differences.

Standard library only: it must run with a plain ``python3`` on Debian 12.

    python3 -m stratuslab_test_oned --listen 127.0.0.1:2633 --state /tmp/oned.sqlite

Design, for later extension:

* every object kind is a ``Kind`` (store.py: name, first id, label used in
  "NAME is already taken by ..." and "Error getting ... [id]." messages);
* objects are plain JSON-able dicts kept in memory and written through to an
  SQLite file (table ``objects``: kind, oid, JSON body; table ``counters``);
* every XML-RPC method is registered with ``@rpc(name, signature)`` (rpc.py)
  in the module of its object kind (objects/), where the signature lists the
  parameter types after the session string, so parameter faults are
  produced the same way for every method;
* time-driven transitions (virtual network driver answers, host monitoring,
  image copies) are stored as due times in the objects and applied lazily by
  ``Oned.tick()`` (core.py) before each call, so they survive restarts.
"""

__version__ = "1.0.0"
