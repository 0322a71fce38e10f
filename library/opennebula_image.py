#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: StratusLab site deployer contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: opennebula_image
short_description: Register an image file in an OpenNebula image datastore
description:
  - Registers an image (for example an appliance verified by M(appliance_verify)) in an OpenNebula image
    datastore with C(one.image.allocate) and C(PATH), then waits until oned's datastore driver has copied it
    and the image is READY. An image that ends in ERROR fails the module with oned's error text.
  - Images are matched by name. A registered image is never registered again, even from another O(path),
    because an image's content does not change under its name (publish a new version under a new name). The
    module warns when the path differs.
  - V(absent) deletes the image by name.
version_added: "1.0.0"
author: StratusLab site deployer team
options:
  name:
    description: Name of the image in OpenNebula.
    type: str
    required: true
  state:
    description: V(present) registers the image when missing; V(absent) deletes it.
    type: str
    choices: [present, absent]
    default: present
  datastore:
    description: Image datastore (name or ID) to register into. Required with O(state=present).
    type: str
  path:
    description:
      - File on the front-end (or URL) oned's datastore driver copies the image from, for example the
        destination of M(appliance_verify). Required with O(state=present). gzip images are decompressed by the
        driver.
    type: str
  type:
    description: OpenNebula image type.
    type: str
    choices: [os, cdrom, datablock]
    default: os
  description:
    description: C(DESCRIPTION) of the image.
    type: str
  template:
    description:
      - Other attributes of the image template, for example the appliance's provenance (manifest checksum,
        signer). Keys are upper-cased. Used when the image is registered.
    type: dict
  wait:
    description: Wait until the image is READY (or gone, with V(absent)).
    type: bool
    default: true
  wait_timeout:
    description: Seconds to wait for READY or deletion.
    type: int
    default: 300
extends_documentation_fragment:
  - stratuslab_one
"""

EXAMPLES = r"""
- name: Verify ttylinux, then register it
  appliance_verify:
    manifest_url: http://appliances.example.org/images/base/ttylinux/ttylinux-9.7.img.manifest.xml
    dest: /var/lib/one/appliances/ttylinux-9.7.img.gz
    trusted_signers: "{{ site_trusted_signer_pems }}"
  register: ttylinux

- name: Register the verified image
  opennebula_image:
    name: ttylinux-9.7
    datastore: default
    path: "{{ ttylinux.dest }}"
    description: "{{ ttylinux.manifest.os }} {{ ttylinux.manifest.osversion }} ({{ ttylinux.manifest.arch }})"
    template:
      sl_sha256: "{{ ttylinux.manifest.sha256 }}"
      sl_signer: "{{ ttylinux.signer.subject }}"

- name: Remove an old version
  opennebula_image:
    name: ttylinux-9.6
    state: absent
"""

RETURN = r"""
image:
  description: The image after the change (predicted in check mode); empty when absent.
  returned: always
  type: dict
  contains:
    id:
      description: Image ID (null in check mode for an image not registered yet).
      type: int
    name:
      description: Image name.
      type: str
    type:
      description: V(os), V(cdrom), V(datablock)...
      type: str
    state:
      description: oned's image state (V(READY), V(LOCKED), V(ERROR)...).
      type: str
    path:
      description: Where the image was registered from.
      type: str
    source:
      description: The image's file inside the datastore.
      type: str
    size_mb:
      description: Size in MB.
      type: int
    datastore_id:
      description: ID of the image datastore.
      type: int
    datastore:
      description: Name of the image datastore.
      type: str
    template:
      description: Template attributes.
      type: dict
  sample: {"id": 0, "name": "ttylinux-9.7", "type": "os", "state": "READY",
           "path": "/var/lib/one/appliances/ttylinux-9.7.img.gz", "source": "/var/lib/one/datastores/1/8f3a...",
           "size_mb": 40, "datastore_id": 1, "datastore": "default", "template": {"SL_SHA256": "9f86..."}}
actions:
  description: The writes done (or planned in check mode), in order.
  returned: always
  type: list
  elements: str
  sample: ["allocate image ttylinux-9.7 in datastore default (1)"]
api_calls:
  description: Number of XML-RPC requests sent to oned.
  returned: always
  type: int
  sample: 4
one_error:
  description: OpenNebula's error (message, numeric code, code name, method, object id) when the module fails.
  returned: failure
  type: dict
"""

from ansible.module_utils.stratuslab_one.image import image_run
from ansible.module_utils.stratuslab_one.module import run_one_module


def main():
    run_one_module(image_run, dict(
        name=dict(type="str", required=True),
        state=dict(type="str", choices=["present", "absent"], default="present"),
        datastore=dict(type="str"),
        path=dict(type="str"),
        type=dict(type="str", choices=["os", "cdrom", "datablock"], default="os"),
        description=dict(type="str"),
        template=dict(type="dict"),
        wait=dict(type="bool", default=True),
        wait_timeout=dict(type="int", default=300),
    ), required_if=[("state", "present", ("datastore", "path"))])


if __name__ == "__main__":
    main()
