# Shared settings and helpers of the tools/vm scripts (sourced, not run).
# shellcheck shell=bash

# Cache of the built image and the tests' SSH key.
VM_CACHE=${STRATUSLAB_CACHE:-/var/cache/stratuslab-test}/vm
VM_IMAGE=$VM_CACHE/bookworm.qcow2
VM_KERNEL=$VM_CACHE/vmlinuz
VM_INITRD=$VM_CACHE/initrd.img
VM_KEY=$VM_CACHE/id_ed25519

# One "set" of running VMs: its state (pidfiles, overlays, logs, inventory)
# lives in $VM_RUN and its private L2 segment in network namespace $VM_NETNS.
# Distinct set names let several sets run side by side (give them distinct
# STRATUSLAB_VM_SSH_PORT_BASE too).
VM_SET=${STRATUSLAB_VM_SET:-default}
VM_RUN=${STRATUSLAB_VM_RUN:-$VM_CACHE/run/$VM_SET}
VM_NETNS=slvm-$VM_SET
VM_BRIDGE=br0

# SSH options for the VMs: every clone has the same host keys, so host-key
# checking is off; loopback only.
VM_SSH_OPTS=(-i "$VM_KEY" -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null
    -o LogLevel=ERROR -o BatchMode=yes -o ConnectTimeout=5 -o IdentitiesOnly=yes)

log() { echo "${0##*/}: $*" >&2; }
die() { log "error: $*"; exit 1; }

# ensure_cmds CMD:PACKAGE...: apt-get install the packages whose command is
# missing (a fresh machine has none of them).
ensure_cmds() {
    local pair missing=()
    for pair in "$@"; do
        command -v "${pair%%:*}" >/dev/null 2>&1 || missing+=("${pair#*:}")
    done
    ((${#missing[@]})) || return 0
    log "installing ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# The tests' SSH key pair; created once, kept across image rebuilds.
ensure_ssh_key() {
    [[ -f $VM_KEY && -f $VM_KEY.pub ]] && return 0
    ensure_cmds ssh-keygen:openssh-client
    mkdir -p "$VM_CACHE"
    rm -f "$VM_KEY" "$VM_KEY.pub"
    ssh-keygen -q -t ed25519 -N '' -C stratuslab-test-vm -f "$VM_KEY"
}

# vm_ssh PORT CMD...: run a command as root in the VM whose SSH is forwarded
# from 127.0.0.1:PORT.
vm_ssh() {
    local port=$1; shift
    ssh "${VM_SSH_OPTS[@]}" -p "$port" root@127.0.0.1 "$@"
}

# pid_is_ours PIDFILE: true when the pid in PIDFILE is a live qemu of this set
# (its command line names this set's run dir), so a recycled pid is never hit.
pid_is_ours() {
    local pid
    pid=$(cat "$1" 2>/dev/null) || return 1
    [[ $pid =~ ^[0-9]+$ && -r /proc/$pid/cmdline ]] || return 1
    tr '\0' ' ' < "/proc/$pid/cmdline" | grep -qF -- "$VM_RUN/"
}
