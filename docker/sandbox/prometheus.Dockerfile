# The sandbox's monitoring host: Debian's Prometheus server, scraping every node's
# /metrics and the controller's (`rollout metrics --serve`) by the config `rollout sandbox
# up` writes and mounts at /etc/voxfleet. The controller judges from it with policy
# `evidence: prometheus|both`. Runs as Debian's `prometheus` user.
ARG BASE_IMAGE=voxfleet/base:bookworm
FROM ${BASE_IMAGE}
# no init system here: package scripts must not try to start the service
RUN printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d \
 && apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends prometheus \
 && rm -rf /var/lib/apt/lists/* /usr/share/doc/* \
 && install -d -o prometheus -g prometheus /var/lib/prometheus/sandbox
USER prometheus
EXPOSE 9090
ENTRYPOINT ["/usr/bin/prometheus", "--config.file=/etc/voxfleet/prometheus.yml", \
            "--storage.tsdb.path=/var/lib/prometheus/sandbox", "--storage.tsdb.retention.time=2d", \
            "--web.listen-address=:9090", "--web.enable-lifecycle"]
