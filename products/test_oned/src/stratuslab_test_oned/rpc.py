"""The XML-RPC method registry (@rpc), parameter checks, authorization,
pool filtering, the generic info/pool readers, and dispatch."""

from .errors import (
    AUTHENTICATION, AUTHORIZATION, FAULT_NO_SUCH_METHOD, FAULT_TYPE, INTERNAL, RPC_API,
    OnedError, RpcFault)
from .store import KINDS
from .template import parse_or_fail, tget
from .wire import I8, encode_fault, encode_response


# --------------------------------------------------------------------------
# The simulated oned
# --------------------------------------------------------------------------

RPC_METHODS = {}


def rpc(name, signature=""):
    """Register a method.  signature: types after the session, e.g. "i,s,?i".

    Letters: i int, s string, b boolean; a leading '?' marks an optional
    parameter (read only when present, as oned does with paramList.size()).
    """
    spec = []
    for item in filter(None, signature.split(",")):
        spec.append((item.lstrip("?"), item.startswith("?")))

    def deco(fn):
        RPC_METHODS[name] = (fn, spec)
        return fn
    return deco


_TYPE_WORDS = {"i": ("int", "integer"), "s": ("string", "a string"),
               "b": ("boolean", "boolean"), "a": ("array", "an array"),
               "n": (("int", "i8"), "integer")}


def check_param(params, index, letter):
    """Mimic xmlrpc-c's paramList.getInt/getString/getBoolean.

    Letters: i int, s string, b boolean, a array (of Param), and n, an
    integer sent as <int> or <i8> (the test clock's epochs only)."""
    if index >= len(params):
        raise RpcFault(FAULT_TYPE, "Not enough parameters")
    wire, word = _TYPE_WORDS[letter]
    if params[index].type not in ((wire,) if isinstance(wire, str)
                                  else wire):
        raise RpcFault(FAULT_TYPE,
                       "Parameter that is supposed to be %s is not" % word)
    return params[index].value


# --------------------------------------------------------------------------
# XML-RPC methods
# --------------------------------------------------------------------------
# Each handler: fn(oned, user, method_name, *params) -> result (int or str).

DEFAULT_PERMS = [1, 1, 0, 0, 0, 0, 0, 0, 0]      # DEFAULT_UMASK 177
_OPS = {"USE": 0, "MANAGE": 1, "ADMIN": 2}


def _is_admin(user):
    return user["gid"] == 0 or 0 in user["groups"]


def _authorized(user, obj, op):
    if _is_admin(user):
        return True
    bit = _OPS[op]
    perms = obj.get("perms", DEFAULT_PERMS)
    if obj["uid"] == user["id"] and perms[bit]:
        return True
    if obj["gid"] in user["groups"] and perms[3 + bit]:
        return True
    return bool(perms[6 + bit])


def _authorize(user, obj, op, label):
    if not _authorized(user, obj, op):
        raise OnedError(AUTHORIZATION, "User [%d] : Not authorized to "
                        "perform %s %s [%d]." % (user["id"], op, label,
                                                 obj["id"]))


def filter_pool(user, objs, flt, start=-1, end=-1, perms=False):
    """oned's pool filter (PoolSQL::PoolFilter) and id range.

    flt: -2 all, -1 mine and my groups', -3 mine, -4 my primary group's,
    N >= 0 user N's; below -4 an error.  perms=True (VMs, VM templates):
    only what the caller may USE, and -1 takes the groups' objects that have
    GROUP_U.  perms=False (the kinds without permissions here): everything
    is visible, and -1 takes the objects of the caller's primary group."""
    if flt < -4:
        raise OnedError(RPC_API, "Incorrect filter_flag")
    out = []
    for obj in objs:
        if perms and not _authorized(user, obj, "USE"):
            continue
        mine = obj["uid"] == user["id"]
        if perms:
            groups = obj["gid"] in user["groups"] and \
                obj.get("perms", DEFAULT_PERMS)[3]
        else:
            groups = obj["gid"] == user["gid"]
        if (flt == -3 and not mine) or (flt == -1 and not (mine or groups)) \
                or (flt == -4 and obj["gid"] != user["gid"]) \
                or (flt >= 0 and obj["uid"] != flt):
            continue
        if (start >= 0 and obj["id"] < start) or \
                (end >= 0 and obj["id"] > end):
            continue
        out.append(obj)
    return out


def refuse_taken_name(o, kind, name, code=INTERNAL, prefix="", owner=None):
    """oned's refusal of a NAME another object of the kind has (of the same
    owner, ``owner`` a user id, for the kinds whose names are per user)."""
    if owner is None:
        dup = o.store.find_name(kind, name)
    else:
        dup = next((other for other in o.store.all(kind)
                    if other["name"] == name and other["uid"] == owner), None)
    if dup is not None:
        raise OnedError(code, "%sNAME is already taken by %s %d." % (
            prefix, KINDS[kind].label, dup["id"]))


def named_allocate(o, kind, text, cluster_id, no_name):
    """The first checks of a template allocate into a cluster, in oned's
    order: template syntax, cluster, a taken NAME, then a missing NAME.
    Returns (template, cluster, name)."""
    tpl = parse_or_fail(text)
    cluster = o.cluster_for_allocate(cluster_id)
    name = tget(tpl, "NAME", "")
    if name:
        refuse_taken_name(o, kind, name)
    if not name:
        raise OnedError(INTERNAL, no_name)
    return tpl, cluster, name


def define_reads(kind, pool_method, info_method, render, pool_render=None,
                 filtered=False, info_signature="i,?b", use=None):
    """Register the two reads of an object kind: one handler each for all
    kinds.

    info_method(id[, flags]) answers render(oned, object), or NO_EXISTS.
    pool_method (None: not offered) answers the pool in descending id
    order, each object drawn by pool_render (default render): the whole
    pool, or with filtered=True after the (filter, start id, end id)
    parameters of filter_pool.  use: the label in the kind's permission
    errors ("VM") when reading needs USE permission."""
    pool_render = pool_render or render

    def info(o, user, m, oid, *flags):
        obj = o.get(kind, oid)
        if use:
            _authorize(user, obj, "USE", use)
        return render(o, obj)

    def pool(o, user, m, *args):
        objs = o.store.all(kind)
        if filtered:
            objs = filter_pool(user, objs, *args, perms=bool(use))
        return o.pool_xml(kind, lambda obj: pool_render(o, obj), objs)

    rpc(info_method, info_signature)(info)
    if pool_method:
        rpc(pool_method, "i,i,i" if filtered else "")(pool)


def dispatch(oned, method, params):
    """Return the response body (bytes) and a short log summary."""
    entry = RPC_METHODS.get(method)
    if entry is None:
        msg = "Method '%s' not defined" % method
        return encode_fault(FAULT_NO_SUCH_METHOD, msg), "fault -506"
    fn, spec = entry
    try:
        session = check_param(params, 0, "s")
        with oned.lock:
            try:
                oned.tick()
                user = oned.authenticate(session)
                if user is None:
                    raise OnedError(AUTHENTICATION, "User couldn't be "
                                    "authenticated, aborting call.")
                args = []
                for index, (letter, optional) in enumerate(spec, start=1):
                    if optional and index >= len(params):
                        break
                    args.append(check_param(params, index, letter))
                result = fn(oned, user, method, *args)
            finally:
                oned.store.flush()
    except RpcFault as fault:
        return encode_fault(fault.code, fault.message), "fault %d" % fault.code
    except OnedError as err:
        body = encode_response([False, "[%s] %s" % (method, err.message),
                                err.code, err.resp_id, I8(-1)])
        return body, "error %d" % err.code
    return encode_response([True, result, 0]), "ok"
