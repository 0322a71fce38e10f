"""A minimal XML-RPC client for the oned methods the collector calls."""

import http.client
import xmlrpc.client


class OnedError(Exception):
    """oned answered with a failure, or could not be reached."""


class _TimeoutMixin:
    """Gives every connection of an xmlrpc.client transport a timeout."""

    def __init__(self, timeout):
        super().__init__()
        self._timeout = timeout

    def make_connection(self, host):
        conn = super().make_connection(host)
        conn.timeout = self._timeout
        return conn


class _TimeoutTransport(_TimeoutMixin, xmlrpc.client.Transport):
    pass


class _TimeoutSafeTransport(_TimeoutMixin, xmlrpc.client.SafeTransport):
    pass


class OnedClient:
    """``session`` is "user:password"; it is never logged nor put in errors."""

    def __init__(self, endpoint, session, timeout=30.0):
        self.endpoint = endpoint
        self._session = session
        transport = (_TimeoutSafeTransport if endpoint.startswith("https:") else _TimeoutTransport)(timeout)
        self._proxy = xmlrpc.client.ServerProxy(endpoint, transport=transport, allow_none=False)

    def call(self, method, *params):
        try:
            answer = getattr(self._proxy, method)(self._session, *params)
        except xmlrpc.client.Fault as exc:
            raise OnedError("%s: XML-RPC fault %s: %s" % (method, exc.faultCode, exc.faultString)) from None
        except xmlrpc.client.ProtocolError as exc:
            raise OnedError("%s: HTTP %s %s" % (method, exc.errcode, exc.errmsg)) from None
        except (OSError, http.client.HTTPException, xmlrpc.client.ResponseError) as exc:
            raise OnedError("%s: %s: %s" % (method, type(exc).__name__, exc)) from None
        if not isinstance(answer, list) or len(answer) < 2:
            raise OnedError("%s: unexpected answer shape" % method)
        if not answer[0]:
            code = answer[2] if len(answer) > 2 else "?"
            raise OnedError("%s: oned error %s: %s" % (method, code, answer[1]))
        return answer[1]

    def accounting(self, start=-1, end=-1, filter_flag=-2):
        """one.vmpool.accounting(filter, start, end) -> HISTORY_RECORDS XML.

        Times are i4 in oned: -1 disables a bound."""
        return self.call("one.vmpool.accounting", int(filter_flag), int(start), int(end))
