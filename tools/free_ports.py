"""A block of free local ports for run-oned-tree, which uses PORT to PORT+3.

Imported, with tools/opennebula on sys.path, by the tests and benches that
start a real oned: tests/unit/opennebula/one_testlib.py,
products/test_oned/tests/test_against_real_oned.py, bench/registration/real_oned.py.
"""

import random
import socket


def free_port_block(count=4, attempts=200):
    """A port whose ``count - 1`` successors are free too (TCP and UDP), on 127.0.0.1."""
    rng = random.Random()
    for _ in range(attempts):
        base = rng.randrange(20000, 60000 - count)
        socks = []
        try:
            for port in range(base, base + count):
                for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
                    sock = socket.socket(socket.AF_INET, kind)
                    socks.append(sock)
                    sock.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
        finally:
            for sock in socks:
                sock.close()
    raise RuntimeError("no block of %d free ports" % count)

