# -*- coding: utf-8 -*-
# Copyright: StratusLab site deployer contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The OpenNebula layer of the opennebula_* modules, one concern a file (docs/opennebula-api-layer.md).

Bottom up:

* ``errors``: oned's error codes, one ``OneError`` subclass per code.
* ``template``: OpenNebula template text, rendered from a dict and parsed back.
* ``model``: what oned answers, parsed (``Host``, ``Cluster``, ``Vnet``,
  ``Datastore``, ``Image``, ``User``) and indexed by id and name (``Pool``).
* ``transport``: ``OneClient``, the XML-RPC client (retries, typed calls, waits).
* ``module``: what every module shares (connection options, ``run_one_module``,
  the ``Changes`` a reconciler records).
* one reconciler per object kind: ``cluster``, ``host`` (opennebula_hosts),
  ``vnets`` (opennebula_vnets, with the planning of one network in ``vnet``),
  ``datastore``, ``image``, ``user``. Each is
  ``*_run(client, params, check_mode) -> result`` and calls the client's
  methods itself.

Standard library only, so nothing has to be installed on the host that runs
the modules.
"""
