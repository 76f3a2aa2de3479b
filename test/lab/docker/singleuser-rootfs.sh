#!/usr/bin/env bash
# Builds the root filesystem of the container image the Docker tests run
# (Debian 12 with jupyterhub-singleuser, the classic notebook and ipykernel)
# as a tarball under /var/cache/hubd-test/, for `docker import`. There is no
# image registry to pull from, so the image is made from Debian packages:
# debootstrap, then apt inside a chroot. Idempotent: an existing tarball of
# this version is kept. Change VERSION whenever the recipe changes: the
# image is tagged hubtest/singleuser:$VERSION, and the Docker lab re-imports
# it (and drops older hubtest/* images) on its next start.
# Usage (root): test/lab/docker/singleuser-rootfs.sh   -> prints the tarball's path,
# .../singleuser-$VERSION/rootfs.tar
set -euo pipefail
VERSION=bookworm-1
PKGS=(jupyterhub python3-notebook python3-ipykernel)
dir=/var/cache/hubd-test/singleuser-$VERSION
out=$dir/rootfs.tar
if [ -s "$out" ]; then echo "$out"; exit 0; fi
[ "$(id -u)" = 0 ] || { echo "singleuser-rootfs: run as root" >&2; exit 1; }
export DEBIAN_FRONTEND=noninteractive LC_ALL=C.UTF-8
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

# The Debian repositories this host's apt already uses (only the package
# registries are reachable, so never a hard-coded mirror): bookworm for
# debootstrap, and bookworm, -updates and -security for the image's apt.
repos=$(apt-get indextargets --format '$(REPO_URI) $(CODENAME)' 'Identifier: Packages' |
  awk '$2 ~ /^bookworm(-updates|-security)?$/' | sort -u)
mirror=$(awk '$2 == "bookworm" {print $1; exit}' <<<"$repos")
[ -n "$mirror" ] || { echo "singleuser-rootfs: no bookworm repository in this host's apt sources" >&2; exit 1; }

mkdir -p /var/cache/hubd-test
work=$(mktemp -d /var/cache/hubd-test/.singleuser-build.XXXXXX)
root=$work/root
cleanup() {
  mountpoint -q "$root/proc" && umount "$root/proc"
  rm -rf "$work"
}
trap cleanup EXIT

echo "singleuser-rootfs: debootstrap bookworm from $mirror" >&2
debootstrap --variant=minbase bookworm "$root" "$mirror" >"$work/debootstrap.log" 2>&1 ||
  { tail -20 "$work/debootstrap.log" >&2; exit 1; }
# The host's Debian repositories, so the image gets the package versions
# the host tests with.
awk '{print "deb " $1 " " $2 " main"}' <<<"$repos" >"$root/etc/apt/sources.list"
# Package scripts must not start services inside the chroot.
printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
chmod 0755 "$root/usr/sbin/policy-rc.d"
mount -t proc proc "$root/proc"
echo "singleuser-rootfs: apt-get install ${PKGS[*]}" >&2
{
  chroot "$root" apt-get -q update
  chroot "$root" apt-get -q install -y --no-install-recommends "${PKGS[@]}"
  chroot "$root" apt-get clean
} >"$work/apt.log" 2>&1 || { tail -20 "$work/apt.log" >&2; exit 1; }
umount "$root/proc"
chroot "$root" dpkg-query -W -f '${Package} ${Version}\n' >"$work/packages.txt"
rm -rf "$root/usr/sbin/policy-rc.d" "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin \
  "$root"/usr/share/doc/* "$root"/usr/share/man/* "$root"/usr/share/locale/* "$root"/var/log/*.log
: >"$root/etc/resolv.conf"
tar -C "$root" --numeric-owner -cf "$work/rootfs.tar" .
mkdir -p "$dir"
mv "$work/packages.txt" "$dir/packages.txt"
mv "$work/rootfs.tar" "$out.tmp" && mv "$out.tmp" "$out"
echo "$out"
