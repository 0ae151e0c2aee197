# The sandbox load balancer host: sshd plus nginx. The nginx_lb role writes and
# reloads its config over SSH, as on a production LB.
ARG BASE_IMAGE=voxfleet/base:bookworm
FROM ${BASE_IMAGE}
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        openssh-server nginx logrotate procps curl \
 && rm -rf /var/lib/apt/lists/* /usr/share/doc/* \
 && rm -f /etc/ssh/ssh_host_*_key* \
 && mkdir -p /run/sshd /root/.ssh && chmod 700 /root/.ssh
COPY lb-entrypoint.sh /usr/local/bin/lb-entrypoint.sh
EXPOSE 22 80
ENTRYPOINT ["/usr/local/bin/lb-entrypoint.sh"]
