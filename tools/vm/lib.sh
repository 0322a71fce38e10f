# Shared settings and helpers of the tools/vm scripts (sourced, not run).
# shellcheck shell=bash
# shellcheck disable=SC2034  # the variables are used by the scripts sourcing this

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

# pid_alive PID: the process exists and is not a zombie.
pid_alive() {
    local state
    state=$(awk '/^State:/ {print $2}' "/proc/$1/status" 2>/dev/null) || return 1
    [[ -n $state && $state != Z ]]
}
any_alive() {
    local pid
    for pid in "$@"; do pid_alive "$pid" && return 0; done
    return 1
}

# pid_is_ours PIDFILE: true when the pid in PIDFILE is a live qemu of this set
# (its command line names this set's run dir), so a recycled pid is never hit.
pid_is_ours() {
    local pid
    pid=$(cat "$1" 2>/dev/null) || return 1
    [[ $pid =~ ^[0-9]+$ ]] && pid_alive "$pid" || return 1
    tr '\0' ' ' < "/proc/$pid/cmdline" | grep -qF -- "$VM_RUN/"
}

netns_exists() { ip netns list 2>/dev/null | awk '{print $1}' | grep -qxF -- "$VM_NETNS"; }

# teardown [TIMEOUT]: stop every VM of this set (ssh poweroff, then SIGTERM
# and SIGKILL after TIMEOUT seconds), then remove its overlays, pidfiles and
# network namespace (its bridge goes with it; the taps vanish with qemu).
# Console logs are kept for post-mortems. Safe on a stale or partial run.
teardown() {
    local timeout=${1:-60} pidfile name port live=() pid deadline
    if [[ -d $VM_RUN ]]; then
        for pidfile in "$VM_RUN"/*.pid; do
            [[ -e $pidfile ]] || continue
            name=$(basename "$pidfile" .pid)
            if pid_is_ours "$pidfile"; then
                live+=("$(cat "$pidfile")")
                port=$(cat "$VM_RUN/$name.port" 2>/dev/null || true)
                # poweroff makes sshd drop the connection: ignore its status.
                if [[ -n $port ]]; then
                    (timeout 15 ssh "${VM_SSH_OPTS[@]}" -p "$port" root@127.0.0.1 \
                        'systemctl --no-block poweroff' >/dev/null 2>&1 || true) &
                fi
            else
                log "removing stale pidfile of $name"
            fi
        done
        wait
        if ((${#live[@]})); then
            deadline=$((SECONDS + timeout))
            while ((SECONDS < deadline)) && any_alive "${live[@]}"; do sleep 1; done
            for pid in "${live[@]}"; do
                if pid_alive "$pid"; then
                    log "VM pid $pid did not power off within ${timeout}s: killing it"
                    kill -TERM "$pid" 2>/dev/null || true
                fi
            done
            sleep 1
            for pid in "${live[@]}"; do
                if pid_alive "$pid"; then kill -KILL "$pid" 2>/dev/null || true; fi
            done
        fi
        find "$VM_RUN" -mindepth 1 -maxdepth 1 ! -name '*.console.log' -exec rm -rf {} +
    fi
    if netns_exists; then
        ip netns delete "$VM_NETNS"
    fi
}
