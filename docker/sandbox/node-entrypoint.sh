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
# The service containers of every sandbox host go into one CPU group weighted far above
# this machine's own processes, so a host keeps its fixed capacity (its container's CPU
# quota) while the controller, Ansible, builds and clients share the rest, as a GPU host's
# capacity does not shrink when the controller's machine is busy. Where the group cannot
# be made (another cgroup layout), the containers go where dockerd puts them.
parent=""
group="${SANDBOX_CGROUP_PARENT:-}"
if [ -n "$group" ] && [ -d /sys/fs/cgroup/cpu ]; then  # cgroup v1
    mkdir -p "/sys/fs/cgroup/cpu$group" && echo 262144 > "/sys/fs/cgroup/cpu$group/cpu.shares" && parent="$group"
elif [ -n "$group" ] && [ -f /sys/fs/cgroup/cgroup.controllers ]; then  # cgroup v2
    mkdir -p "/sys/fs/cgroup$group" && echo 10000 > "/sys/fs/cgroup$group/cpu.weight" && parent="$group"
fi
[ -n "$parent" ] || echo "service containers not weighted: no cgroup ${group:-named} could be made" >&2
dockerd --insecure-registry "${SANDBOX_REGISTRY:?}" ${parent:+--cgroup-parent "$parent"} >/var/log/dockerd.log 2>&1 &
i=0
until docker info >/dev/null 2>&1; do
    i=$((i + 1)); [ "$i" -lt 60 ] || { tail -20 /var/log/dockerd.log; exit 1; }; sleep 1
done
exec /usr/sbin/sshd -D -e
