#!/bin/bash
# Boot the installed systemd as PID 1 of private PID/mount/cgroup/UTS/IPC namespaces, for the systemd
# spawner's tests on hosts whose own PID 1 is not systemd (CI VMs, containers). The network namespace is
# shared, so a unit listening on 127.0.0.1 is reachable from the host; D-Bus is reachable from the host at
# unix:path=/proc/<pid>/root/run/dbus/system_bus_socket (`bus-address`).
#
#   scripts/systemd-in-ns.sh start         boot; prints the host pid of the namespace's systemd
#   scripts/systemd-in-ns.sh exec CMD...   run CMD inside (e.g. exec systemctl show UNIT)
#   scripts/systemd-in-ns.sh bus-address   print DBUS_SYSTEM_BUS_ADDRESS for clients on the host
#   scripts/systemd-in-ns.sh journal-dir   print the directory of the namespace's journal, for journalctl -D
#                                          (volatile, in the private /run; PID 1 logs there too)
#   scripts/systemd-in-ns.sh stop          power off, then remove what the instance left on the host
#
# Root only (CAP_SYS_ADMIN). One instance per machine: on a cgroup v1 host the devices, pids and
# name=systemd hierarchies are rooted at "/", so two instances would both manage /system.slice. `start`
# therefore refuses while any systemd runs as PID 1 of another PID namespace, whoever started it.
# Always `stop`: /dev/log (journald's socket link on the shared devtmpfs) and the cgroup directories the
# instance created in the host hierarchies stay behind otherwise. A `start` after a crash cleans those up.
# State: $HUBD_SYSTEMD_NS_STATE (default /run/hubtest-systemd, the same as the lab script's, so each
# refuses to start while the other runs).
set -u
S=${HUBD_SYSTEMD_NS_STATE:-/run/hubtest-systemd}

die() { echo "systemd-in-ns: $*" >&2; exit 1; }
ours() { [ -s "$S/pid" ] && kill -0 "$(cat "$S/pid")" 2>/dev/null; }
need_ours() { ours || die "not running (no live pid in $S/pid): start it first"; }

# other_instance prints the host pid of any systemd that is PID 1 of a PID namespace other than ours.
other_instance() {
  local self p ns
  self=$(readlink /proc/self/ns/pid)
  for p in $(pgrep -x systemd); do
    ns=$(readlink "/proc/$p/ns/pid" 2>/dev/null) || continue
    [ "$ns" != "$self" ] || continue
    # "NSpid: <host pid> 1": PID 1 of its own namespace.
    awk '$1 == "NSpid:" && $NF == 1 { found = 1 } END { exit !found }' "/proc/$p/status" 2>/dev/null && { echo "$p"; return 0; }
  done
  return 1
}

# cleanup_host removes what a stopped (or crashed) instance left on the host.
cleanup_host() {
  # journald's dev-log socket made /dev/log point into the instance's private /run.
  [ "$(readlink /dev/log 2>/dev/null)" = /run/systemd/journal/dev-log ] && rm -f /dev/log
  # The (empty) cgroup directories systemd created in the host hierarchies, deepest first: new since the
  # start and named like units. rmdir never removes a cgroup that still has processes.
  if [ -f "$S/cgroups-before" ]; then
    find /sys/fs/cgroup -mindepth 2 -type d 2>/dev/null | sort | comm -13 "$S/cgroups-before" - |
      grep -E '\.(slice|scope|service|socket|mount|swap)$' | sort -r | xargs -r rmdir 2>/dev/null
    rm -f "$S/cgroups-before"
  fi
  rm -f "$S/pid"
}

# mounts_spec describes the host's cgroup layout for the namespace: "unified", or the v1 hierarchies as
# target:options words plus the cgroup2 mount point.
mounts_spec() {
  if [ -f /sys/fs/cgroup/cgroup.controllers ]; then echo unified; return; fi
  findmnt -rn -t cgroup -o TARGET,OPTIONS | awk '{
    n = split($2, o, ","); keep = "";
    for (i = 1; i <= n; i++) if (o[i] !~ /^(rw|ro|relatime|noatime|nosuid|nodev|noexec|clone_children)$/) keep = keep (keep ? "," : "") o[i];
    if (keep ~ /^name=/) keep = "none," keep;
    printf "%s:%s ", $1, keep }'
  findmnt -rn -t cgroup2 -o TARGET | head -1
}

# The namespace's init: private /run, boot units that would act on the host masked, a minimal target
# (dbus + journald), cgroup hierarchies re-mounted so they are rooted at the new cgroup namespace (units'
# cgroups then land under the caller's cgroups), then exec systemd.
inner='
set -e
mount -t tmpfs -o mode=755,size=64m tmpfs /run
mkdir -p /run/systemd/system /run/lock
# udevd would act on the shared /sys, systemd-sysctl would write host sysctls, tmpfiles --boot --remove
# would empty the shared /tmp, journal-flush would write into the host'"'"'s /var/log/journal.
for u in $(ls /lib/systemd/system/sysinit.target.wants/ /etc/systemd/system/sysinit.target.wants/ 2>/dev/null | grep -v -e : -e "^$"); do
  [ "$u" = systemd-journald.service ] || ln -sf /dev/null "/run/systemd/system/$u"
done
for u in systemd-udevd-control.socket systemd-udevd-kernel.socket systemd-udevd.service systemd-initctl.socket \
         systemd-journald-audit.socket systemd-journal-flush.service systemd-tmpfiles-clean.timer \
         systemd-tmpfiles-clean.service systemd-tmpfiles-setup.service systemd-tmpfiles-setup-dev.service \
         systemd-logind.service getty@tty1.service console-getty.service systemd-remount-fs.service \
         systemd-networkd.service systemd-resolved.service; do
  ln -sf /dev/null "/run/systemd/system/$u"
done
printf "[Unit]\nDescription=hubd test target\nDefaultDependencies=no\nWants=dbus.socket dbus.service systemd-journald.socket\n" \
  > /run/systemd/system/hubd-test.target
if [ "$CGSPEC" = unified ]; then
  mount -t cgroup2 cgroup2 /sys/fs/cgroup
else
  mount -t tmpfs -o mode=755 cgroup_root /sys/fs/cgroup
  for m in $CGSPEC; do
    case "$m" in
      *:*) t=${m%%:*}; mkdir -p "$t"; mount -t cgroup -o "${m#*:}" cgroup "$t" ;;
      /*)  mkdir -p "$m"; mount -t cgroup2 cgroup2 "$m" ;;
    esac
  done
fi
export container=hubd-test
exec /lib/systemd/systemd --unit=hubd-test.target --log-target=journal --log-level=info --show-status=no
'

case "${1:-}" in
start)
  [ "$(id -u)" = 0 ] || die "must run as root (it mounts and unshares)"
  [ -x /lib/systemd/systemd ] && command -v dbus-daemon >/dev/null || die "needs the packages systemd and dbus"
  mkdir -p "$S"
  exec 9>"$S/lock"
  flock -n 9 || die "another start or stop is in progress ($S/lock)"
  ours && die "already running: pid $(cat "$S/pid"); stop it first"
  if o=$(other_instance); then
    die "a namespaced systemd already runs (host pid $o): only one may run per machine; if it is a leftover, stop it with its own script"
  fi
  cleanup_host # a previous instance that crashed or was killed
  find /sys/fs/cgroup -mindepth 2 -type d 2>/dev/null | sort > "$S/cgroups-before"
  : > "$S/log"
  CGSPEC=$(mounts_spec | tr '\n' ' ') setsid unshare --fork --pid --mount --cgroup --uts --ipc \
    --propagation private --mount-proc bash -c "$inner" > "$S/log" 2>&1 < /dev/null 9>&- &
  outer=$!
  P=
  for _ in $(seq 1 100); do
    P=$(pgrep -P "$outer" -x systemd 2>/dev/null) && break
    kill -0 "$outer" 2>/dev/null || break
    sleep 0.05
  done
  if [ -z "$P" ]; then
    tail -20 "$S/log" >&2
    kill "$outer" 2>/dev/null; cleanup_host
    die "systemd did not start (log above, full log in $S/log)"
  fi
  echo "$P" > "$S/pid"
  st=
  for _ in $(seq 1 200); do
    st=$(nsenter -t "$P" -m -p -u -i -C -- systemctl is-system-running 2>/dev/null)
    case "$st" in running|degraded) break ;; esac
    sleep 0.05
  done
  case "$st" in
    running|degraded) echo "$P" ;;
    *) echo "systemd-in-ns: state ${st:-unknown} after 10 s; stopping (log: $S/log)" >&2; "$0" stop >&2; exit 1 ;;
  esac
  ;;
exec)
  shift; need_ours; exec nsenter -t "$(cat "$S/pid")" -m -p -u -i -C -- "$@"
  ;;
bus-address)
  need_ours; echo "unix:path=/proc/$(cat "$S/pid")/root/run/dbus/system_bus_socket"
  ;;
journal-dir)
  need_ours; echo "/proc/$(cat "$S/pid")/root/run/log/journal"
  ;;
stop)
  [ -d "$S" ] || die "not running (no $S)"
  exec 9>"$S/lock"
  flock -w 30 9 || die "another start or stop holds $S/lock"
  if ours; then
    P=$(cat "$S/pid")
    nsenter -t "$P" -m -p -- systemctl poweroff --no-block >/dev/null 2>&1 || kill -TERM "$P"
    for _ in $(seq 1 200); do kill -0 "$P" 2>/dev/null || break; sleep 0.05; done
    if kill -0 "$P" 2>/dev/null; then
      echo "systemd-in-ns: pid $P did not power off in 10 s; SIGKILL" >&2
      kill -KILL "$P"
      for _ in $(seq 1 100); do kill -0 "$P" 2>/dev/null || break; sleep 0.05; done
    fi
  fi
  cleanup_host
  echo stopped
  ;;
*)
  echo "usage: $0 start | exec CMD... | bus-address | journal-dir | stop" >&2; exit 2
  ;;
esac
