# -*- coding: utf-8 -*-
# Copyright: StratusLab site deployer contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Connection options shared by the opennebula_* modules."""


class ModuleDocFragment(object):
    DOCUMENTATION = r"""
options:
  api_url:
    description:
      - URL of the OpenNebula XML-RPC endpoint, for example V(http://one-frontend:2633/RPC2).
      - When not set, the E(ONE_XMLRPC) environment variable is used, then V(http://localhost:2633/RPC2).
    type: str
    aliases: [api_endpoint]
  api_username:
    description:
      - OpenNebula user name.
      - When not set, it is read from the auth file named by E(ONE_AUTH), else C(~/.one/one_auth),
        which holds C(user:password) like OpenNebula's CLI expects.
    type: str
  api_password:
    description:
      - Password (or login token) of O(api_username).
      - When not set, it is read from the same auth file as O(api_username).
      - Never logged and never returned.
    type: str
    aliases: [api_token]
  validate_certs:
    description:
      - Verify the TLS certificate of an C(https://) endpoint. Set to V(false) only for self-signed test endpoints.
    type: bool
    default: true
  api_timeout:
    description:
      - Timeout in seconds of one XML-RPC request. Connection errors and LOCKED answers are retried
        with exponential backoff on top of it.
    type: int
    default: 30
notes:
  - Talks to oned with Python's standard C(xmlrpc.client); no OpenNebula Python binding (pyone) is needed
    on the host that runs the module.
  - The module result always holds RV(api_calls), the number of XML-RPC requests it made.
"""
