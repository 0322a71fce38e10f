"""The test clock (testoned.clock.set/advance: NOT oned methods)."""

from ..errors import RPC_API, OnedError
from ..rpc import rpc
from ..wire import I8


# --------------------------------------------------------------------------
# The test clock (NOT an oned method: testoned.clock.*)
#
# VM and accounting times (VM STIME/ETIME, history STIME..EETIME, template
# REGTIME) are read from this clock.  Unset, it is the real time.  Once set
# it stands still and moves only by testoned.clock.set/advance, so a test can
# script hours of VM time in seconds.  Kept in the state file.  oneadmin's
# group only.  testoned.clock.set(session, 0) goes back to the real time.
# --------------------------------------------------------------------------

@rpc("testoned.clock.set", "n")
def clock_set(o, user, m, epoch):
    o.require_admin(user)
    if epoch < 0:
        raise OnedError(RPC_API, "The clock can not be set before 1970")
    o.store.set_meta("clock", "" if epoch == 0 else str(epoch))
    return I8(o.clock()) if o.clock() > 2 ** 31 - 1 else o.clock()


@rpc("testoned.clock.advance", "n")
def clock_advance(o, user, m, seconds):
    o.require_admin(user)
    if seconds < 0:
        raise OnedError(RPC_API, "The clock only moves forward")
    o.store.set_meta("clock", str(o.clock() + seconds))
    return I8(o.clock()) if o.clock() > 2 ** 31 - 1 else o.clock()
