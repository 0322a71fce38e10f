#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: StratusLab site deployer contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: opennebula_datastore
short_description: Manage OpenNebula system, image and file datastores
description:
  - Creates, updates or deletes an OpenNebula datastore of type system, image or file, with its datastore
    driver (C(DS_MAD)), transfer driver (C(TM_MAD), for example C(shared), C(ssh) or C(qcow2)) and cluster
    membership, and checks the directory it is in (O(base_path)).
  - The template is updated (merged) only when an attribute really differs. The type of an existing datastore
    cannot be changed.
version_added: "1.0.0"
author: StratusLab site deployer team
options:
  type:
    description: Datastore type.
    type: str
    choices: [system, image, file]
    default: image
  ds_mad:
    description:
      - Datastore driver (for example V(fs)). Required to create image and file datastores; not used for
        system datastores.
    type: str
  tm_mad:
    description: Transfer driver (for example V(shared), V(ssh), V(qcow2)). Required to create a datastore.
    type: str
  base_path:
    description:
      - Directory the datastore must be in on the nodes, checked, never set. OpenNebula ignores C(BASE_PATH)
        in a datastore template and always puts a datastore at C(DATASTORE_LOCATION/<id>), from oned.conf.
      - The module fails (before creating a new datastore, or without changing an existing one) when oned's
        C(DATASTORE_LOCATION) is not this directory. C(BASE_PATH) is refused in O(template) for the same reason.
    type: str
  template:
    description: Other template attributes merged into the datastore template. Keys are upper-cased.
    type: dict
  clusters:
    description:
      - Clusters (names or IDs) the datastore must be in, exactly. The first one is used at creation.
        Omit to leave membership alone (a new datastore goes to the C(default) cluster).
    type: list
    elements: str
extends_documentation_fragment:
  - stratuslab_one
  - stratuslab_one.by_name_or_id
"""

EXAMPLES = r"""
- name: Shared system datastore
  opennebula_datastore:
    name: system-shared
    type: system
    tm_mad: shared
    clusters: [stratuslab]

- name: qcow2 image datastore on the NFS export
  opennebula_datastore:
    name: images-qcow2
    type: image
    ds_mad: fs
    tm_mad: qcow2
    base_path: /var/lib/one/datastores
    clusters: [stratuslab]

- name: Delete a datastore
  opennebula_datastore:
    name: old-images
    state: absent
"""

RETURN = r"""
datastore:
  description: The datastore after the change (predicted in check mode); empty when absent.
  returned: always
  type: dict
  contains:
    id:
      description: Datastore ID (null in check mode for a datastore not created yet).
      type: int
    name:
      description: Datastore name.
      type: str
    type:
      description: V(system), V(image) or V(file).
      type: str
    ds_mad:
      description: Datastore driver (C(-) for system datastores).
      type: str
    tm_mad:
      description: Transfer driver.
      type: str
    base_path:
      description: BASE_PATH on the nodes, as oned reports it (DATASTORE_LOCATION/ID).
      type: str
    clusters:
      description: IDs of the clusters holding the datastore.
      type: list
      elements: int
    template:
      description: Template attributes.
      type: dict
  sample: {"id": 100, "name": "images-qcow2", "type": "image", "ds_mad": "fs", "tm_mad": "qcow2",
           "base_path": "/var/lib/one/datastores/100", "clusters": [100], "template": {"TM_MAD": "qcow2"}}
actions:
  description: The writes done (or planned in check mode), in order.
  returned: always
  type: list
  elements: str
  sample: ["allocate datastore images-qcow2"]
api_calls:
  description: Number of XML-RPC requests sent to oned.
  returned: always
  type: int
  sample: 3
one_error:
  description: OpenNebula's error (message, numeric code, code name, method, object id) when the module fails.
  returned: failure
  type: dict
  sample: {"msg": "[one.datastore.allocate] DS_MAD named \"nope\" is not defined in oned.conf", "code": 8192,
           "code_name": "INTERNAL", "method": "one.datastore.allocate", "resp_id": -1}
"""

from ansible.module_utils.stratuslab_one.datastore import datastore_run
from ansible.module_utils.stratuslab_one.module import run_one_module


def main():
    run_one_module(datastore_run, dict(
        type=dict(type="str", choices=["system", "image", "file"], default="image"),
        ds_mad=dict(type="str"),
        tm_mad=dict(type="str"),
        base_path=dict(type="str"),
        template=dict(type="dict"),
        clusters=dict(type="list", elements="str"),
    ), by_name_or_id=True)


if __name__ == "__main__":
    main()
