"""oned's error codes (Request::ErrorCode), xmlrpc-c's fault codes, and the
two ways a call fails: RpcFault (an XML-RPC fault) and OnedError (oned's
[false, MSG, CODE, RESP_ID, -1] answer)."""


# --------------------------------------------------------------------------
# oned error codes (Request::ErrorCode)
# --------------------------------------------------------------------------
SUCCESS = 0x0000
AUTHENTICATION = 0x0100
AUTHORIZATION = 0x0200
NO_EXISTS = 0x0400
ACTION = 0x0800
RPC_API = 0x1000
INTERNAL = 0x2000
ALLOCATE = 0x4000
LOCKED = 0x8000

# xmlrpc-c fault codes
FAULT_TYPE = -501
FAULT_PARSE = -503
FAULT_NO_SUCH_METHOD = -506


class RpcFault(Exception):
    """An XML-RPC fault raised by the XML-RPC layer (xmlrpc-c in real oned)."""

    def __init__(self, code, message):
        super().__init__(message)
        self.code = code
        self.message = message


class OnedError(Exception):
    """A failure answered with oned's [false, MSG, CODE, RESP_ID, -1] array."""

    def __init__(self, code, message, resp_id=-1):
        super().__init__(message)
        self.code = code
        self.message = message
        self.resp_id = resp_id
