#!/usr/bin/env bash
# Installs hubd on this machine and runs it in the foreground with one demo
# member, so a browser can log in at http://<host>:8000/ right away.
# `make demo` runs it after `scripts/deps.sh run` and `make build`.
#
# Usage (root):  scripts/demo.sh [--user NAME] [--port PORT]
#   env:         DEMO_USER (default demo), DEMO_PORT (default 8000)
#
# What it does, each step skipped or reused when already done:
#   - group jupyterhub; system account hub (group shadow, for PAM)
#   - member DEMO_USER in jupyterhub with a home and a new random password
#   - bin/hubd -> /usr/local/bin/hubd (root 0755: the sudoers rule names it)
#   - /etc/pam.d/hubd from the template, only if absent or identical
#   - /etc/sudoers.d/hubd, rendered, checked with visudo -cf, then moved in
#   - /var/lib/hubd, /var/log/hubd, /var/backups/hubd, /run/hubd owned by hub
#   - /etc/hubd/hubd.toml (only if absent): defaults + classic Notebook UI
# Then `hubd serve` runs as hub until Ctrl-C. On exit the script stops every
# user server the hub started (hubd itself leaves them running on purpose)
# and leaves the installed files in place; it prints how to remove them.

# Functions run from traps look unreachable to shellcheck (whole file).
# shellcheck disable=SC2317
set -euo pipefail

# ---- settings ---------------------------------------------------------------
REPO=$(cd "$(dirname "$(readlink -f "$0")")/.." && pwd)
DEMO_USER=${DEMO_USER:-demo}
DEMO_PORT=${DEMO_PORT:-}        # empty: keep the configured port (8000 by default)
HUB_USER=hub                    # unprivileged account hubd runs as
GROUP=jupyterhub                # members group: auth.allowed_group and the sudoers rule
HELPER=/usr/local/bin/hubd      # spawner.helper_path; the sudoers rule names this path
CONF_DIR=/etc/hubd
CONF=$CONF_DIR/hubd.toml
PAM_FILE=/etc/pam.d/hubd
SUDOERS_FILE=/etc/sudoers.d/hubd
TEMPLATES=$REPO/core/host/templates
SRC_BIN=${HUBD_BIN:-$REPO/bin/hubd}
# Accounts this script created carry this comment, so a rerun may reset the
# password of its own demo member but never that of a real person's account.
DEMO_GECOS="hubd demo member (scripts/demo.sh)"
# Servers get a system PATH and a clean environment: root's may name a
# non-Debian python3 or carry variables the hub must not see.
SYS_PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

usage() { echo "usage: $0 [--user NAME] [--port PORT]   (env: DEMO_USER, DEMO_PORT)"; }
die() { echo "demo: $*" >&2; exit 1; }
say() { echo "demo: $*"; }

while [ $# -gt 0 ]; do
  case $1 in
  --user) [ $# -ge 2 ] || { usage >&2; exit 2; }; DEMO_USER=$2; shift 2 ;;
  --user=*) DEMO_USER=${1#*=}; shift ;;
  --port) [ $# -ge 2 ] || { usage >&2; exit 2; }; DEMO_PORT=$2; shift 2 ;;
  --port=*) DEMO_PORT=${1#*=}; shift ;;
  -h | --help) usage; exit 0 ;;
  *) usage >&2; exit 2 ;;
  esac
done

[ "$(id -u)" = 0 ] || die "run as root (sudo make demo): it creates accounts and installs files under /etc and /usr/local/bin"
# The same rule hubd's names package applies: sudo would read "-x" as an
# option, and useradd refuses most other shapes anyway.
[[ $DEMO_USER =~ ^[a-z_][a-z0-9_-]{0,31}$ ]] || die "DEMO_USER '$DEMO_USER' is not a valid user name"
[ "$DEMO_USER" != "$HUB_USER" ] || die "DEMO_USER must not be the hub account '$HUB_USER'"
if [ -n "$DEMO_PORT" ]; then
  if ! [[ $DEMO_PORT =~ ^[0-9]{1,5}$ ]] || [ "$DEMO_PORT" -lt 1 ] || [ "$DEMO_PORT" -gt 65535 ]; then
    die "DEMO_PORT '$DEMO_PORT' is not a port number"
  fi
fi
[ -x "$SRC_BIN" ] || die "$SRC_BIN is missing: run 'make build' first (or 'make demo', which does)"
for f in pam.d-hubd sudoers-hubd; do
  [ -f "$TEMPLATES/$f" ] || die "template $TEMPLATES/$f is missing"
done
for cmd in sudo visudo setpriv useradd chpasswd; do
  command -v "$cmd" >/dev/null || die "'$cmd' is missing: run 'scripts/deps.sh run' first"
done
[ -x /usr/bin/jupyterhub-singleuser ] ||
  die "/usr/bin/jupyterhub-singleuser is missing: run 'scripts/deps.sh run' (Debian's jupyterhub package)"

# Temporary files are created next to their destination (same filesystem, so
# the final mv is atomic) with a leading dot: sudo's @includedir skips names
# containing a dot, so a half-written sudoers drop-in is never read.
tmpfiles=()
rm_tmpfiles() { [ ${#tmpfiles[@]} -eq 0 ] || rm -f -- "${tmpfiles[@]}"; }
# mktemp_in DIR: sets $tmp (not echoed: a $(...) subshell would lose the
# bookkeeping that lets the exit trap remove the file).
mktemp_in() { tmp=$(mktemp "$1/.hubd-demo.XXXXXX"); tmpfiles+=("$tmp"); }

# render TEMPLATE: fills in the three fields the host templates use and
# refuses anything else, so an unknown {{...}} can never reach /etc.
render() {
  local out
  out=$(sed -e "s|{{\.HubUser}}|$HUB_USER|g" -e "s|{{\.Group}}|$GROUP|g" \
    -e "s|{{\.HelperPath}}|$HELPER|g" "$1")
  if grep -q '{{' <<<"$out"; then
    die "template $1 has fields this script does not fill: $(grep -o '{{[^}]*}}' <<<"$out" | sort -u | tr '\n' ' ')"
  fi
  printf '%s\n' "$out"
}

# toml_get SECTION KEY FILE: the raw value of KEY in [SECTION] of a file
# written by `hubd config show` (one key per line, no nesting tricks).
toml_get() {
  awk -v sec="[$1]" -v key="$2" '
    /^\[/ { in_sec = ($0 == sec); next }
    in_sec && $1 == key && $2 == "=" { sub(/^[^=]*= */, ""); gsub(/^"|"$/, ""); print; exit }' "$3"
}

# ---- effective configuration and ports (before changing anything) ------------
# `config show` merges the defaults with an existing /etc/hubd/hubd.toml; run
# the freshly built binary with a clean HUBD_CONFIG so root's environment
# cannot point it elsewhere.
work_dir=$(mktemp -d /tmp/hubd-demo.XXXXXX)
trap 'rm_tmpfiles; rm -rf "$work_dir"' EXIT
effective=$work_dir/effective.toml
if [ -f "$CONF" ]; then
  env -u HUBD_CONFIG "$SRC_BIN" config show --config "$CONF" >"$effective" ||
    die "$CONF does not load; fix it (hubd config check --config $CONF) or move it away"
else
  # No file: the defaults (the default path does not exist yet).
  env -u HUBD_CONFIG "$SRC_BIN" config show >"$effective"
fi
listen=$(toml_get hub listen "$effective")
internal_listen=$(toml_get hub internal_listen "$effective")
base_url=$(toml_get hub base_url "$effective")
listen_host=${listen%:*}
listen_port=${listen##*:}
[ -n "$DEMO_PORT" ] || DEMO_PORT=$listen_port
internal_host=${internal_listen%:*}
internal_port=${internal_listen##*:}
case $internal_host in "" | 0.0.0.0 | "[::]" | "::") internal_host=127.0.0.1 ;; esac
# Every server this hub starts gets JUPYTERHUB_API_URL=<this> in its
# environment, and so do its kernels and terminals: that is how the exit
# handler finds exactly this hub's servers.
api_url="http://$internal_host:$internal_port${base_url}hub/api"

# A second demo (or another hub) on the same ports would fail after we reset
# the password, and its exit handler would stop the first hub's servers.
port_busy() { command -v ss >/dev/null && [ -n "$(ss -Hltn "sport = :$1" 2>/dev/null)" ]; }
for p in "$DEMO_PORT" "$internal_port"; do
  if port_busy "$p"; then
    die "port $p is already in use (another hubd or demo still running?); 'ss -ltnp \"sport = :$p\"' shows who"
  fi
done

# Never reset the password of an account this script did not create.
if getent passwd "$DEMO_USER" >/dev/null &&
  [ "$(getent passwd "$DEMO_USER" | cut -d: -f5)" != "$DEMO_GECOS" ]; then
  die "account $DEMO_USER exists and was not created by this script; refusing to reset its password (pick another DEMO_USER)"
fi

# ---- accounts ---------------------------------------------------------------
getent group "$GROUP" >/dev/null || { groupadd "$GROUP"; say "created group $GROUP"; }
if ! getent passwd "$HUB_USER" >/dev/null; then
  # System account, own group, no password, no shell; group shadow lets
  # pam_unix read /etc/shadow (otherwise it can only check the hub's own password).
  useradd --system --user-group --groups shadow --home-dir /var/lib/hubd --no-create-home \
    --shell /usr/sbin/nologin --comment "hubd hub account" "$HUB_USER"
  say "created system account $HUB_USER (in group shadow)"
elif ! id -nG "$HUB_USER" | tr ' ' '\n' | grep -qx shadow; then
  usermod -aG shadow "$HUB_USER"
  say "added $HUB_USER to group shadow (PAM needs to read /etc/shadow)"
fi
[ "$(id -u "$HUB_USER")" != 0 ] || die "account $HUB_USER has uid 0; hubd must not run as root here"

if getent passwd "$DEMO_USER" >/dev/null; then
  say "reusing member $DEMO_USER"
else
  useradd --create-home --shell /bin/bash --comment "$DEMO_GECOS" "$DEMO_USER"
  say "created member $DEMO_USER"
fi
usermod -aG "$GROUP" "$DEMO_USER"
demo_uid=$(id -u "$DEMO_USER")
[ "$demo_uid" -ge 1000 ] || die "$DEMO_USER has uid $demo_uid; hubd refuses accounts below auth.min_uid (1000)"
# 18 random bytes -> 24 base64 characters, with +/ swapped for letters so
# the password is easy to paste. A new one on every run.
DEMO_PASSWORD=$(head -c 18 /dev/urandom | base64 | tr '+/' 'xy')
printf '%s:%s\n' "$DEMO_USER" "$DEMO_PASSWORD" | chpasswd
# chpasswd leaves an expiry set by an earlier `passwd -e` in place; make sure
# the account stanza of the PAM file does not refuse the demo member.
chage -d "$(date +%Y-%m-%d)" -E -1 "$DEMO_USER"

# as_hub CMD...: run a command as the hub account with its groups and a clean
# environment (runuser/su would keep root's).
as_hub() {
  setpriv --reuid="$HUB_USER" --regid="$HUB_USER" --init-groups -- \
    env -i PATH="$SYS_PATH" HOME=/var/lib/hubd LANG=C.UTF-8 "$@"
}

# ---- binary -----------------------------------------------------------------
# Copy then rename: the helper path may be in use by a running hub or server,
# and the rule in /etc/sudoers.d names this exact root-owned path.
mktemp_in /usr/local/bin
t=$tmp
install -o root -g root -m 0755 "$SRC_BIN" "$t"
mv -f "$t" "$HELPER"
say "installed $HELPER ($("$HELPER" version 2>/dev/null || echo '?'))"

# ---- PAM service --------------------------------------------------------------
# pam_modules_ok FILE: every module the stack names must exist, or PAM would
# refuse every login (with only a syslog line to say why).
pam_modules_ok() {
  local mod dir found
  while read -r mod; do
    found=
    for dir in /lib/*/security /usr/lib/*/security /lib/security /usr/lib/security; do
      [ -e "$dir/$mod" ] && { found=1; break; }
    done
    [ -n "$found" ] || { echo "PAM module $mod not found" >&2; return 1; }
  done < <(awk '!/^[[:space:]]*(#|$)/ && $3 ~ /\.so$/ { print $3 }' "$1")
}
mktemp_in /etc/pam.d
pam_new=$tmp
render "$TEMPLATES/pam.d-hubd" >"$pam_new"
chmod 0644 "$pam_new"
if [ -f "$PAM_FILE" ] && cmp -s "$pam_new" "$PAM_FILE"; then
  say "$PAM_FILE is already up to date"
elif [ -e "$PAM_FILE" ]; then
  # An admin's own stack wins; say so, because a stack with common-auth
  # (nullok, delays) behaves differently from the template.
  say "WARNING: $PAM_FILE exists and differs from $TEMPLATES/pam.d-hubd; leaving it as it is"
  say "         (compare: diff $PAM_FILE $TEMPLATES/pam.d-hubd)"
else
  pam_modules_ok "$pam_new" || die "rendered PAM file does not check out; nothing installed"
  # The temp file is itself a PAM service (named after its file): if
  # pamtester is there, log the demo member in through it as the hub account
  # before the real service name exists.
  if command -v pamtester >/dev/null; then
    if ! out=$(printf '%s\n' "$DEMO_PASSWORD" |
      as_hub pamtester "$(basename "$pam_new")" "$DEMO_USER" authenticate acct_mgmt 2>&1); then
      die "a test login of $DEMO_USER as $HUB_USER through the new PAM stack failed; $PAM_FILE not installed: $out"
    fi
  fi
  mv -f "$pam_new" "$PAM_FILE"
  say "installed $PAM_FILE"
fi

# ---- sudoers rule -------------------------------------------------------------
mktemp_in /etc/sudoers.d
sudo_new=$tmp
render "$TEMPLATES/sudoers-hubd" >"$sudo_new"
chown root:root "$sudo_new"
chmod 0440 "$sudo_new"
# A drop-in that does not parse disables sudo for everyone: check it first.
visudo -cqf "$sudo_new" || die "rendered sudoers rule does not parse (visudo -cf); nothing installed"
if [ -f "$SUDOERS_FILE" ] && cmp -s "$sudo_new" "$SUDOERS_FILE"; then
  say "$SUDOERS_FILE is already up to date"
else
  [ ! -e "$SUDOERS_FILE" ] || say "replacing $SUDOERS_FILE (hubd owns this file)"
  mv -f "$sudo_new" "$SUDOERS_FILE"
  say "installed $SUDOERS_FILE (validated with visudo -cf)"
fi
# The rule as sudo itself sees it: the hub may run the helper as the member.
as_hub sudo -n -l -u "$DEMO_USER" "$HELPER" spawn-helper >/dev/null ||
  die "sudo does not let $HUB_USER run '$HELPER spawn-helper' as $DEMO_USER; check 'visudo -c' and $SUDOERS_FILE"

# ---- directories and configuration ------------------------------------------------
install -d -o "$HUB_USER" -g "$HUB_USER" -m 0750 \
  "$(dirname "$(toml_get data db "$effective")")" "$(toml_get data log_dir "$effective")" \
  "$(toml_get backups dir "$effective")"
# runtime_dir is on tmpfs (gone after a reboot); the admin socket lives there.
install -d -o "$HUB_USER" -g "$HUB_USER" -m 0755 "$(toml_get data runtime_dir "$effective")"
install -d -o root -g root -m 0755 "$CONF_DIR"

conf_existed=
if [ -e "$CONF" ]; then
  conf_existed=1
  say "using the existing $CONF"
else
  mktemp_in "$CONF_DIR"
  conf_new=$tmp
  {
    echo "# hubd configuration written by scripts/demo.sh on $(date -u +%Y-%m-%dT%H:%M:%SZ)."
    echo "# The defaults of 'hubd config show' (spawner.app = \"notebook\": the classic Notebook UI)."
    awk -v port="$DEMO_PORT" '
      /^\[/ { sec = $0 }
      sec == "[hub]" && $1 == "listen" { sub(/:[0-9]+"$/, ":" port "\"") }
      { print }
    ' "$effective"
  } >"$conf_new"
  grep -q '^app = "notebook"' "$conf_new" || die "the configuration does not select the Notebook app (spawner.app)"
  chmod 0644 "$conf_new"
  env -u HUBD_CONFIG "$HELPER" config check --config "$conf_new" >/dev/null ||
    die "the generated configuration does not validate; nothing written"
  mv -f "$conf_new" "$CONF"
  say "wrote $CONF"
fi

# DEMO_PORT against an existing file with another port: run with a copy of the
# effective configuration that only moves the listener; the file stays as is.
run_conf=$CONF
if [ -n "$conf_existed" ] && [ "$DEMO_PORT" != "$listen_port" ]; then
  run_conf=$work_dir/hubd.toml
  env -u HUBD_CONFIG "$HELPER" config show --config "$CONF" |
    awk -v port="$DEMO_PORT" '/^\[/ { sec = $0 } sec == "[hub]" && $1 == "listen" { sub(/:[0-9]+"$/, ":" port "\"") } { print }' >"$run_conf"
  chmod 0755 "$work_dir"
  chmod 0644 "$run_conf"
  say "running on port $DEMO_PORT with a copy of $CONF (the file itself says $listen)"
fi

# ---- stop everything on exit ------------------------------------------------------
hubd_pid=
our_sid=$(ps -o sid= -p $$ | tr -d ' ')

# server_pids: processes started by this hub, found by the API URL in their
# environment (servers, their kernels and terminals). Never our own session.
server_pids() {
  local d pid sid
  for d in /proc/[0-9]*; do
    pid=${d#/proc/}
    # -z: the file is NUL-separated; processes may vanish meanwhile.
    grep -qzxF "JUPYTERHUB_API_URL=$api_url" "$d/environ" 2>/dev/null || continue
    sid=$(ps -o sid= -p "$pid" 2>/dev/null | tr -d ' ') || continue
    [ "$sid" != "$our_sid" ] && echo "$pid"
  done
  return 0
}

stop_servers() {
  local pids n=0
  # A spawn in flight when hubd stopped may still bring a server up: rescan.
  for _ in 1 2 3; do
    pids=$(server_pids)
    [ -n "$pids" ] || break
    n=$((n + $(wc -w <<<"$pids")))
    # shellcheck disable=SC2086 # one pid per word
    kill -TERM $pids 2>/dev/null
    # TERM lets jupyterhub-singleuser shut its kernels down; 10 s is the
    # hub's own spawner.stop_timeout.
    for _ in $(seq 100); do
      # shellcheck disable=SC2086
      kill -0 $pids 2>/dev/null || break
      sleep 0.1
    done
    pids=$(server_pids)
    # shellcheck disable=SC2086
    [ -z "$pids" ] || kill -KILL $pids 2>/dev/null
    sleep 0.5
  done
  pids=$(server_pids)
  if [ -n "$pids" ]; then
    echo "demo: WARNING: still running after TERM and KILL: $(tr '\n' ' ' <<<"$pids")" >&2
  elif [ "$n" -gt 0 ]; then
    say "stopped $n user server process(es) (servers, kernels, terminals)"
  fi
}

on_exit() {
  local rc=$?
  set +e
  trap '' INT TERM
  if [ -n "$hubd_pid" ] && kill -0 "$hubd_pid" 2>/dev/null; then
    kill -TERM "$hubd_pid" 2>/dev/null
    for _ in $(seq 150); do kill -0 "$hubd_pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$hubd_pid" 2>/dev/null; then
      echo "demo: hubd did not stop within 15 s; killing it" >&2
      kill -KILL "$hubd_pid" 2>/dev/null
    fi
    wait "$hubd_pid" 2>/dev/null
  fi
  if [ -n "$hubd_pid" ]; then
    say "hubd stopped; stopping the user servers it started"
    stop_servers
    cat <<EOF

demo: the install stays in place, so the next 'make demo' starts quickly:
  $HELPER  $PAM_FILE  $SUDOERS_FILE  $CONF
  /var/lib/hubd  /var/log/hubd  /var/backups/hubd  accounts $HUB_USER, $DEMO_USER, group $GROUP
To remove it all:
  rm -f $SUDOERS_FILE $PAM_FILE $HELPER && rm -rf $CONF_DIR /var/lib/hubd /var/log/hubd /var/backups/hubd /run/hubd
  userdel -r $DEMO_USER; userdel $HUB_USER; groupdel $GROUP
EOF
  fi
  rm_tmpfiles
  rm -rf "$work_dir"
  exit "$rc"
}
trap on_exit EXIT
# Ctrl-C reaches hubd directly too (same process group); the traps make sure
# the script itself proceeds to on_exit even when only it gets the signal.
trap 'exit 130' INT
trap 'exit 143' TERM HUP

# ---- run ----------------------------------------------------------------------
host=$(hostname -f 2>/dev/null || hostname)
base=${base_url:-/}
echo
echo "================================================================"
echo " hubd demo"
case $listen_host in
"" | 0.0.0.0 | "[::]")
  echo "   URL:      http://$host:$DEMO_PORT$base"
  echo "             http://127.0.0.1:$DEMO_PORT$base" ;;
*) echo "   URL:      http://$listen_host:$DEMO_PORT$base" ;;
esac
echo "   user:     $DEMO_USER"
echo "   password: $DEMO_PASSWORD"
echo "   Ctrl-C stops the hub and every server it started."
echo "================================================================"
echo

# In the background and waited for, so a signal to this script runs its trap
# at once instead of after hubd exits. A simple command (not the as_hub
# function, which would fork a subshell) so that, with setpriv and env
# exec'ing in place, $! is hubd's own pid and the trap's TERM reaches it.
setpriv --reuid="$HUB_USER" --regid="$HUB_USER" --init-groups -- \
  env -i PATH="$SYS_PATH" HOME=/var/lib/hubd LANG=C.UTF-8 "$HELPER" serve --config "$run_conf" &
hubd_pid=$!
set +e
wait "$hubd_pid"
rc=$?
set -e
# hubd stops by itself only on an error (port taken, bad database, ...).
[ "$rc" = 0 ] || echo "demo: hubd exited with status $rc" >&2
exit "$rc"
