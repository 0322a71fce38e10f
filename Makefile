# StratusLab site deployer: the two commands and their parts.
#   make site   build local test hosts and deploy the demo site into them
#   make test   lint, unit tests, molecule scenarios (what CI runs)
# Both start from a fresh Debian 12 machine as root: every tool they need is
# installed by the targets below (apt packages, .venv, the host image).

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= /usr/bin/python3
VENV := $(CURDIR)/.venv
STAMP := $(VENV)/.installed

# Podman runs with the project's own settings (runc, no default ulimits);
# see tools/container/containers.conf. Nothing in /etc is changed
# (tools/container/host-limits raises one kernel limit for this boot).
export CONTAINERS_CONF := $(CURDIR)/tools/container/containers.conf
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg
# The reference data the unit tests read (answers captured from OpenNebula
# 7.4.0's oned, its XSDs, API notes) is in the repository, under
# tests/fixtures/opennebula. Only the OpenNebula source tarball is outside:
# tools/opennebula/build-packages (one-packages) reads it from
# $STRATUSLAB_SHARED/opennebula/source/, the shared/ folder beside the
# checkout; a clone made elsewhere (git clone . /tmp/fresh) finds it beside
# the repository it was cloned from. Set STRATUSLAB_SHARED (or
# ONE_SOURCE_TARBALL) to use another copy; the script says how to get it
# when it is missing, and a cached build does not need it.
STRATUSLAB_SHARED ?= $(firstword $(wildcard $(CURDIR)/../shared) \
	$(wildcard $(shell git -C $(CURDIR) config --get remote.origin.url 2>/dev/null)/../shared))
export STRATUSLAB_SHARED
export PATH := $(VENV)/bin:$(PATH)

# Debian packages the targets need, installed by `deps`: Python's venv and
# headers and what python-ldap builds from (python3-venv python3-dev gcc
# libldap2-dev libsasl2-dev), podman with runc and debootstrap for the test
# hosts, git, ssh (openssh-client) to reach the demo's hosts, qemu for the VM
# test hosts, postgresql for the accounting tests and bench, slapd,
# ldap-utils and openssl for the unit tests that run a real LDAP server or
# make certificates, iproute2 (`ip`) for the nodes' preflight tests,
# xmlsec1, python3-cryptography and python3-apt for the appliance tests that
# sign and verify manifests and run the appliances entry point on this machine.
# The tools install what only they use, when it is missing: build-packages
# (make one-packages) OpenNebula's build and check dependencies (scons, g++,
# ruby and its gems' packages, ...); tools/test-image/build and check
# (make test-image) dosfstools, mtools, syslinux, cpio, xz-utils, kmod,
# genisoimage, iputils-ping; tools/vm/build-image and up (make vm-image,
# vm-up) e2fsprogs. bench/cache/build-squid installs nothing (it says what it
# needs).
APT_PACKAGES := python3-venv python3-dev gcc libldap2-dev libsasl2-dev \
	podman runc debootstrap git openssh-client qemu-system-x86 qemu-utils \
	postgresql slapd ldap-utils openssl iproute2 \
	xmlsec1 python3-cryptography python3-apt

# Molecule scenarios run by `make test`, started in this order (the longest
# first: see `molecule` below). `site` converges the
# real site.yml on a front-end and two nodes (the frontend, bridge and
# kvm_node roles are tested there, with the real OpenNebula, and the
# front-end is also the LDAP server, accounting host and appliance
# repository, whose uploads, refusals and signed appliances are tested from a
# node, its LDAP from a node and its LDAP login to OpenNebula from this
# machine); `own_pki` is a site
# with its own certificates and LDAP server and accounting in SQLite;
# `monitoring` runs Prometheus behind the LDAP login and makes its alerts
# fire and resolve (with Debian's Chromium in a container as the browser). `vm`
# (qemu VMs under software emulation, about 3x slower per task) and `nfs`
# (image sharing over NFS, which the containers' kernel lacks) run with
# `make test-vm`.
SCENARIOS ?= site own_pki accounting squid monitoring default
VM_SCENARIOS ?= vm nfs

.PHONY: help deps venv image one-packages test-image vm-image vm-up vm-down accounting-wheel lint unit molecule test test-vm site validate site-down collection clean

help:
	@echo "make site       build local test hosts and deploy the demo site (inventories/demo)"
	@echo "make test       lint, unit tests and molecule scenarios ($(SCENARIOS))"
	@echo "make site-down  remove the demo site's containers"
	@echo "make vm-up      boot VMS=$(VMS) qemu VM test hosts (make vm-down stops them)"
	@echo "make validate   rerun the demo site's validation (a VM on every site network)"
	@echo "make collection build the Ansible collection stratuslab.cloud (build/collection/*.tar.gz)"
	@echo "make accounting-wheel  build the accounting service's wheel that the accounting role installs"
	@echo "parts: deps venv image one-packages test-image vm-image accounting-wheel lint unit molecule"

# Seconds `deps` waits for another apt or dpkg on this machine to release
# its lock before it gives up (the tools' own installs wait as long).
# apt-get install waits for the dpkg lock itself (DPkg::Lock::Timeout);
# apt-get update (apt 2.6) fails at once when another update holds the lock
# of /var/lib/apt/lists, so it is tried again every 10 s until then.
APT_LOCK_TIMEOUT ?= 600
APT_GET := apt-get -o DPkg::Lock::Timeout=$(APT_LOCK_TIMEOUT)
deps:
	@missing=$$(for p in $(APT_PACKAGES); do \
		dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "deps: installing" $$missing; \
		deadline=$$(( $$(date +%s) + $(APT_LOCK_TIMEOUT) )); \
		until $(APT_GET) update -qq; do \
			[ "$$(date +%s)" -lt "$$deadline" ] || { echo "deps: apt-get update failed for $(APT_LOCK_TIMEOUT) s" >&2; exit 1; }; \
			echo "deps: apt-get update failed (another apt holding its lock?); trying again in 10 s"; \
			sleep 10; \
		done; \
		DEBIAN_FRONTEND=noninteractive $(APT_GET) install -y -qq $$missing >/dev/null; \
	fi

$(STAMP): requirements.txt | deps
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --disable-pip-version-check -r requirements.txt
	touch $@

venv: deps $(STAMP)

# The test hosts are systemd containers: host-limits raises the inotify
# instance limit they need (for this boot, when it is lower).
image: deps
	tools/container/host-limits
	tools/container/build-image

# OpenNebula 7.4.0 built from its source into Debian packages and a signed
# local apt repository (docs/opennebula-packages.md), cached by the source's
# checksum and the recipe: a second run reuses the build.
one-packages: deps
	tools/opennebula/build-packages

# The validation's bootable test VM image, from Debian's packages
# (docs/test-image.md), cached by its recipe.
test-image: deps
	tools/test-image/build

# VM test hosts (tools/vm, docs/vm-test-hosts.md): for what needs a kernel
# of its own, such as NFS. VMS sets how many `make vm-up` boots.
VMS ?= 2
vm-image: deps
	tools/vm/build-image

vm-up: vm-image
	tools/vm/up $(VMS)

vm-down:
	tools/vm/down

# The accounting service (products/accounting) as the wheel the accounting
# role installs, in the role's files/ (not in git; products/accounting/README.md).
# Rebuilt on every call: a second build of the same source is the same file.
ACCOUNTING_WHEEL_DIR := roles/accounting/files
accounting-wheel: venv
	tools/products/build-wheel products/accounting $(ACCOUNTING_WHEEL_DIR)

lint: venv
	yamllint --strict .
	ansible-lint

# The unit tests run on every core (pytest-xdist), a test file at a time per
# worker, so a file's shared fixtures (its slapd, PostgreSQL, real oned)
# start once per worker that runs it. UNIT_WORKERS=0 runs them in one process.
# Among them the fault tests against the real oned (docs/faults.md: oned
# down, a run killed half-way); the full cache disk and the node down mid-run
# are tested in the squid and site scenarios' verify.
UNIT_WORKERS ?= auto
# The role's preflight, which many of them run, needs the accounting wheel.
# The products' tests are beside their code (products/<name>/tests).
unit: venv one-packages accounting-wheel
	pytest -n $(UNIT_WORKERS) --dist loadfile --durations=25 tests/unit products/accounting/tests products/test_oned/tests

# The scenarios run two at a time (tools/molecule-lanes), in SCENARIOS' order,
# each as soon as a lane is free: a scenario spends much of its time waiting
# (VMs under software emulation, OpenNebula's monitoring, apt), which the
# other uses. Each one's output is printed whole when it ends
# (.molecule-logs/<scenario>.log). MOLECULE_LANES=1 runs them one by one.
# The SSH key the scenarios reach their containers with
# (molecule/shared/create.yml) is made here once, so that two scenarios
# starting together do not both make it.
MOLECULE_LANES ?= 2
TEST_SSH_KEY := /var/cache/stratuslab-test/demo-ssh/id_ed25519
molecule: venv image one-packages test-image accounting-wheel
	@test -f $(TEST_SSH_KEY) || { install -d -m 0700 $(dir $(TEST_SSH_KEY)) && \
		ssh-keygen -q -t ed25519 -C stratuslab-demo -N '' -f $(TEST_SSH_KEY); }
	tools/molecule-lanes $(MOLECULE_LANES) $(SCENARIOS)

test: lint unit molecule
	@echo "make test: all checks passed"

test-vm: venv image
	@for s in $(VM_SCENARIOS); do molecule test -s $$s; done


site: venv image one-packages test-image accounting-wheel
	ansible-playbook -i inventories/demo tools/demo/up.yml
	ansible-playbook -i inventories/demo site.yml
	ansible-playbook -i inventories/demo playbooks/validate.yml
	ansible-playbook -i inventories/demo tools/demo/summary.yml

validate: venv
	ansible-playbook -i inventories/demo playbooks/validate.yml

site-down: venv
	ansible-playbook -i inventories/demo tools/demo/down.yml

# The Ansible collection (galaxy.yml) from the checkout's folders, in a
# collection's layout: build/collection/<namespace>-<name>-<version>.tar.gz
# (tools/collection/build says what it copies and changes;
# tests/unit/test_collection.py installs and runs it).
collection: venv
	tools/collection/build

clean:
	rm -rf $(VENV) .pytest_cache
