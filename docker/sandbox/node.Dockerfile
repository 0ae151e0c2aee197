# A GPU-host stand-in for the sandbox fleet: sshd plus its own Docker engine, the way
# a real host runs the service (pulls from the registry, runs containers). No GPU.
ARG BASE_IMAGE=voxfleet/base:bookworm
FROM ${BASE_IMAGE}
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        openssh-server docker.io python3-requests iptables procps curl \
 && rm -rf /var/lib/apt/lists/* /usr/share/doc/* \
 && rm -f /etc/ssh/ssh_host_*_key* \
 && mkdir -p /run/sshd /root/.ssh && chmod 700 /root/.ssh
COPY node-entrypoint.sh /usr/local/bin/node-entrypoint.sh
EXPOSE 22 6006
ENTRYPOINT ["/usr/local/bin/node-entrypoint.sh"]
