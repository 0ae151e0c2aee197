#!/bin/sh
# Starts the node's Docker engine (trusting the sandbox registry over plain HTTP),
# then serves SSH in the foreground with the key from SANDBOX_AUTHORIZED_KEY.
set -eu
printf '%s\n' "${SANDBOX_AUTHORIZED_KEY:?}" > /root/.ssh/authorized_keys
chmod 600 /root/.ssh/authorized_keys
# Host keys of its own, made at first start (the image has none): `rollout sandbox up`
# reads them through the Docker engine into the sandbox's known_hosts.
ssh-keygen -A >/dev/null
# A `docker stop` kills the inner engine without cleanup; its stale pid files would
# stop it from starting again after `docker start`.
rm -rf /var/run/docker.pid /var/run/docker /run/containerd
dockerd --insecure-registry "${SANDBOX_REGISTRY:?}" >/var/log/dockerd.log 2>&1 &
i=0
until docker info >/dev/null 2>&1; do
    i=$((i + 1)); [ "$i" -lt 60 ] || { tail -20 /var/log/dockerd.log; exit 1; }; sleep 1
done
exec /usr/sbin/sshd -D -e
