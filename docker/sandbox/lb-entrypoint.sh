#!/bin/sh
# Serves SSH in the foreground; nginx runs as a daemon (Debian's default config until
# the nginx_lb role templates ours). No init system: the role reloads nginx itself.
set -eu
printf '%s\n' "${SANDBOX_AUTHORIZED_KEY:?}" > /root/.ssh/authorized_keys
chmod 600 /root/.ssh/authorized_keys
# Host keys of its own, made at first start (the image has none): `rollout sandbox up`
# reads them through the Docker engine into the sandbox's known_hosts.
ssh-keygen -A >/dev/null
nginx
# No systemd here to run the nginx_lb role's rotation timer: check its rules every minute.
(while sleep 60; do
    [ ! -f /etc/logrotate.d/voxfleet-lb ] \
        || logrotate --state /var/lib/logrotate/voxfleet-lb.status /etc/logrotate.d/voxfleet-lb
done) &
exec /usr/sbin/sshd -D -e
