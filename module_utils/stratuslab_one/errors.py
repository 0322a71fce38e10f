# -*- coding: utf-8 -*-
# Copyright: StratusLab site deployer contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Errors of the OpenNebula layer: oned's error codes and one exception class per code."""

from __future__ import annotations

# Request::ErrorCode in OpenNebula's include/Request.h
SUCCESS = 0x0000
AUTHENTICATION = 0x0100
AUTHORIZATION = 0x0200
NO_EXISTS = 0x0400
ACTION = 0x0800
RPC_API = 0x1000
INTERNAL = 0x2000
ALLOCATE = 0x4000
LOCKED = 0x8000
REPLICATION = 0x10000

ERROR_NAMES = {
    AUTHENTICATION: "AUTHENTICATION",
    AUTHORIZATION: "AUTHORIZATION",
    NO_EXISTS: "NO_EXISTS",
    ACTION: "ACTION",
    RPC_API: "RPC_API",
    INTERNAL: "INTERNAL",
    ALLOCATE: "ALLOCATE",
    LOCKED: "LOCKED",
    REPLICATION: "REPLICATION",
}


class OneError(Exception):
    """Base class of every error raised by this module.

    ``message`` is OpenNebula's own text (``[one.host.info] Error getting
    host [99999].``), ``code`` its numeric error code (None for transport
    errors), ``method`` the XML-RPC method and ``resp_id`` the object id
    oned reports (NO_EXISTS) or -1.
    """

    def __init__(self, message, code=None, method=None, resp_id=-1):
        super().__init__(message)
        self.message = message
        self.code = code
        self.method = method
        self.resp_id = resp_id

    @property
    def code_name(self):
        return ERROR_NAMES.get(self.code, str(self.code) if self.code is not None else None)

    def to_dict(self):
        return {"msg": self.message, "code": self.code, "code_name": self.code_name,
                "method": self.method, "resp_id": self.resp_id}


class OneAuthenticationError(OneError):
    """AUTHENTICATION (0x100): wrong user, password or session string."""


class OneAuthorizationError(OneError):
    """AUTHORIZATION (0x200): the user may not do this."""


class OneNotFoundError(OneError):
    """NO_EXISTS (0x400): the object does not exist."""


class OneActionError(OneError):
    """ACTION (0x800): the action is refused (wrong state, not empty...)."""


class OneApiError(OneError):
    """RPC_API (0x1000): wrong parameter value (bad filter, update type...)."""


class OneInternalError(OneError):
    """INTERNAL (0x2000): template errors, duplicate vnet/datastore names..."""


class OneAllocateError(OneError):
    """ALLOCATE (0x4000): allocation refused (duplicate host/cluster name...)."""


class OneLockedError(OneError):
    """LOCKED (0x8000): the object is locked; retried by the client."""


class OneReplicationError(OneError):
    """REPLICATION (0x10000): HA replication problem."""


class OneFaultError(OneError):
    """An XML-RPC fault from xmlrpc-c (wrong parameter type, unknown method)."""


class OneConnectionError(OneError):
    """The endpoint could not be reached, or answered something not XML-RPC.

    ``interrupted``: a write reached oned and its answer was lost (oned may
    have carried it out).
    """

    def __init__(self, message, interrupted=False, **kwargs):
        super().__init__(message, **kwargs)
        self.interrupted = interrupted


class OneTimeoutError(OneError):
    """A polling helper gave up waiting; ``pending`` holds what was left."""

    def __init__(self, message, pending=None, **kwargs):
        super().__init__(message, **kwargs)
        self.pending = pending or {}


class OneConfigError(OneError):
    """Missing or unreadable endpoint/credentials."""


ERROR_CLASSES = {
    AUTHENTICATION: OneAuthenticationError,
    AUTHORIZATION: OneAuthorizationError,
    NO_EXISTS: OneNotFoundError,
    ACTION: OneActionError,
    RPC_API: OneApiError,
    INTERNAL: OneInternalError,
    ALLOCATE: OneAllocateError,
    LOCKED: OneLockedError,
    REPLICATION: OneReplicationError,
}


def error_from_response(method, response):
    """Build the exception for a failure envelope ``[False, msg, code, id, idx]``."""
    message = str(response[1]) if len(response) > 1 else "unknown error"
    code = response[2] if len(response) > 2 and isinstance(response[2], int) else None
    resp_id = response[3] if len(response) > 3 and isinstance(response[3], int) else -1
    cls = ERROR_CLASSES.get(code, OneError)
    return cls(message, code=code, method=method, resp_id=resp_id)
