#!/bin/sh
# The single-user command of the systemd test: Debian's jupyterhub-singleuser,
# or the memory eater for the user named in the flag file, once it exists.
if [ -n "$HUBTEST_EAT_FLAG" ] && [ -r "$HUBTEST_EAT_FLAG" ] && [ "$JUPYTERHUB_USER" = "$(cat "$HUBTEST_EAT_FLAG")" ]; then
  exec /usr/bin/python3 "$(dirname "$0")/eater.py"
fi
exec /usr/bin/jupyterhub-singleuser "$@"
