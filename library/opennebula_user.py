#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: StratusLab site deployer contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: opennebula_user
short_description: Manage OpenNebula users and the certificates (DNs) they log in with
description:
  - Creates, updates or deletes an OpenNebula user and sets its authentication driver.
  - With O(x509_dns) the user is a user of OpenNebula's C(x509) driver, whose password is the list of the
    certificate subjects it logs in with (C(oneuser login NAME --x509)); the module writes them the way the
    driver compares them (each blank as C(\20), several DNs separated by C(|)) and changes them when they differ.
  - oned stores a C(core) password hashed, so a core user's O(password) is used only when the user is created.
  - A new user is in OpenNebula's C(users) group.
  - Uses the project's own XML-RPC client; no pyone is needed.
version_added: "1.0.0"
author: StratusLab site deployer team
options:
  auth_driver:
    description:
      - The user's authentication driver (C(core), C(x509), C(ldap), ...). Default C(x509) with O(x509_dns),
        else C(core).
    type: str
  x509_dns:
    description:
      - The subjects of the certificates the user logs in with, in OpenSSL's slash form
        (C(/C=FR/O=Example/CN=Jane Doe), as C(openssl x509 -noout -subject -nameopt compat) prints it).
      - Makes the user an C(x509) user.
    type: list
    elements: str
  password:
    description:
      - The password of a new user of another driver than C(x509). Never returned.
    type: str
extends_documentation_fragment:
  - stratuslab_one
  - stratuslab_one.by_name_or_id
"""

EXAMPLES = r"""
- name: Let Jane Doe log in with her grid certificate
  opennebula_user:
    name: jdoe
    x509_dns:
      - /DC=org/DC=example/CN=Jane Doe

- name: Delete a user
  opennebula_user:
    name: olduser
    state: absent
"""

RETURN = r"""
user:
  description: The user after the change (predicted in check mode); empty when absent.
  returned: always
  type: dict
  contains:
    id:
      description: User ID (null in check mode for a user not created yet).
      type: int
    name:
      description: User name.
      type: str
    group:
      description: The user's primary group.
      type: str
    auth_driver:
      description: The user's authentication driver.
      type: str
    enabled:
      description: Whether the user may log in.
      type: bool
    x509_dns:
      description: The DNs an C(x509) user logs in with (only for that driver).
      type: list
      elements: str
  sample: {"id": 5, "name": "jdoe", "group": "users", "auth_driver": "x509", "enabled": true,
           "x509_dns": ["/DC=org/DC=example/CN=Jane Doe"]}
actions:
  description: The writes done (or planned in check mode), in order.
  returned: always
  type: list
  elements: str
  sample: ["allocate user jdoe (driver x509)"]
api_calls:
  description: Number of XML-RPC requests sent to oned.
  returned: always
  type: int
  sample: 2
one_error:
  description: OpenNebula's error (message, numeric code, code name, method, object id) when the module fails.
  returned: failure
  type: dict
  sample: {"msg": "[one.user.allocate] NAME is already taken by USER 5.", "code": 2048, "code_name": "ACTION",
           "method": "one.user.allocate", "resp_id": -1}
"""

from ansible.module_utils.stratuslab_one.module import run_one_module
from ansible.module_utils.stratuslab_one.user import user_run


def main():
    run_one_module(user_run, dict(
        auth_driver=dict(type="str"),
        x509_dns=dict(type="list", elements="str"),
        password=dict(type="str", no_log=True),
    ), by_name_or_id=True, mutually_exclusive=[("x509_dns", "password")])


if __name__ == "__main__":
    main()
