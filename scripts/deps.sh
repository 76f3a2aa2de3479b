#!/usr/bin/env bash
# Installs everything hubd's build, tests and benchmarks need on Debian 12,
# as root, without prompts. Safe to run again: it only installs what is
# missing. Usage: scripts/deps.sh [build|test|bench]   (default: test)
set -euo pipefail
what=${1:-test}
export DEBIAN_FRONTEND=noninteractive
export PATH=/usr/local/go/bin:$PATH

build_pkgs=(make git gcc libc6-dev libpam0g-dev ca-certificates)
run_pkgs=(sudo acl procps psmisc util-linux passwd
  jupyterhub python3-notebook python3-ipykernel
  python3-venv python3-pip python3-setuptools python3-wheel)
# prometheus scrapes /hub/metrics in a test (its service is kept from
# starting by the policy-rc.d below); python3-jupyter-server is the other
# single-user app the tests select; libnss3-tools (certutil) makes Chromium
# trust the TLS tests' CA.
test_pkgs=(pamtester libpam-wrapper socat tmux sqlite3 curl systemd dbus chromium lintian
  slapd ldap-utils nslcd libnss-ldapd libpam-ldapd
  slurmctld slurmd slurm-client munge docker.io debootstrap
  prometheus python3-jupyter-server libnss3-tools)
bench_pkgs=(wrk)

pkgs=("${build_pkgs[@]}")
case $what in
build) ;;
run) pkgs+=("${run_pkgs[@]}") ;;
test) pkgs+=("${run_pkgs[@]}" "${test_pkgs[@]}") ;;
bench) pkgs+=("${run_pkgs[@]}" "${test_pkgs[@]}" "${bench_pkgs[@]}") ;;
*) echo "usage: $0 [build|run|test|bench]" >&2; exit 2 ;;
esac

if [ "$(id -u)" != 0 ]; then
  echo "deps: run as root (it installs Debian packages)" >&2
  exit 1
fi

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "deps: installing ${missing[*]}"
  # The LDAP lab (internal/testlab/ldaplab) runs slapd and nslcd with
  # configurations of its own. The packages must leave the host as it was:
  # no Debian slapd database, no "ldap" in nsswitch.conf, no daemon started
  # by a package script, no pam_ldap in /etc/pam.d/common-*.
  debconf-set-selections <<'EOF'
slapd slapd/no_configuration boolean true
nslcd nslcd/ldap-uris string ldap://127.0.0.1/
nslcd nslcd/ldap-base string dc=hubtest,dc=local
nslcd nslcd/ldap-auth-type select none
libnss-ldapd libnss-ldapd/nsswitch multiselect
libnss-ldapd libnss-ldapd/clean_nsswitch boolean false
EOF
  # Debian's hook that keeps package scripts from starting daemons; a
  # temporary one when the machine has none.
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
    chmod 0755 /usr/sbin/policy-rc.d
    trap 'rm -f /usr/sbin/policy-rc.d' EXIT
  fi
  # Wait for another apt run instead of failing on the dpkg lock.
  apt-get -o DPkg::Lock::Timeout=300 update -qq
  apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  # libpam-ldapd's postinst has just run pam-auth-update, which added
  # pam_ldap to /etc/pam.d/common-*: with no directory answering, sudo and
  # every login would wait for LDAP. Switch the profile off at once:
  # pam-auth-update writes common-* back as they were, and --disable (unlike
  # --remove) keeps it off when other packages run pam-auth-update later.
  # The LDAP lab's tests use a PAM service of their own that names pam_ldap.
  case " ${missing[*]} " in *" libpam-ldapd "*) pam-auth-update --package --disable ldap ;; esac
fi
if grep -l pam_ldap /etc/pam.d/common-* >&2; then
  echo "deps: warning: pam_ldap is in the PAM files above, so logins wait for LDAP while no directory answers; unless that is wanted: pam-auth-update --package --disable ldap" >&2
fi

if ! command -v go >/dev/null; then
  echo "deps: Go 1.26 is required at /usr/local/go (https://go.dev/doc/install)" >&2
  exit 1
fi

# Node.js and npm for the browser test (playwright-core drives Debian's Chromium).
if [ "$what" = test ] || [ "$what" = bench ]; then
  if ! command -v npm >/dev/null; then
    apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends nodejs npm >/dev/null
  fi
  if [ ! -d test/browser/node_modules/playwright-core ]; then
    (cd test/browser && npm install --no-audit --no-fund --silent >/dev/null)
  fi
fi

# The benchmarks' proxy anchor: configurable-http-proxy 5.3.0 from npm, in a
# prefix of its own (a plain `npm install -g` would replace Debian's
# /usr/bin/configurable-http-proxy).
if [ "$what" = bench ] && [ "$(/opt/hubd-bench/chp/bin/configurable-http-proxy --version 2>/dev/null)" != 5.3.0 ]; then
  npm install -g --prefix /opt/hubd-bench/chp --no-audit --no-fund --silent configurable-http-proxy@5.3.0 >/dev/null
fi

# Ory Hydra for the OpenID Connect lab (internal/testlab/oidclab), built once
# per Go version into /var/cache/hubd-test so that no test waits for it.
if [ "$what" = test ] || [ "$what" = bench ]; then
  "$(dirname "$0")/../test/lab/oidc/build.sh" >/dev/null
fi

# The Docker lab's image (internal/testlab/dockerlab): Debian 12 with
# jupyterhub-singleuser, built once per recipe version into
# /var/cache/hubd-test. (The packages above install without starting
# munged, slurmd, containerd or dockerd: policy-rc.d; the labs start their
# own.)
if [ "$what" = test ] || [ "$what" = bench ]; then
  "$(dirname "$0")/../test/lab/docker/singleuser-rootfs.sh" >/dev/null
fi

# Go tools (staticcheck, nfpm) are pinned as `tool` lines in go.mod and run
# with `go tool`, so go.sum fixes their versions; nothing is installed here.
echo "deps: ok ($what)"
