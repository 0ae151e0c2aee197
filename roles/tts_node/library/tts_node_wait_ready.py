#!/usr/bin/python
"""Wait on the host for the TTS service container to be ready and healthy, watching the
container at the same time: a restart or an exit fails at once, as does a /readyz that
says the model will never be ready. One module run polls every half second, where a
task retried with `until` would start a module per look."""


DOCUMENTATION = r"""
module: tts_node_wait_ready
short_description: Wait until the TTS service container is ready and healthy, or fail fast
description:
  - Polls the service's C(/readyz) and the container's state through the Docker API.
  - Succeeds when C(/readyz) answers 200 and the container's own health check says healthy.
  - Fails as soon as the container has restarted since O(restarts_before), has exited, or
    C(/readyz) reports a failure (a model that failed to load, warm-up audio that failed its checks).
options:
  name:
    description: The service container.
    type: str
    required: true
  url:
    description: The service's readiness URL as seen from the host.
    type: str
    required: true
  restarts_before:
    description: The container's restart count when it was (re)started; more means it crashed since.
    type: int
    default: 0
  timeout_s:
    description: How long to wait in all.
    type: float
    default: 180
  poll_s:
    description: Time between looks.
    type: float
    default: 0.5
extends_documentation_fragment:
  - community.docker.docker.api_documentation
"""

RETURN = r"""
container:
  description: The container's inspection when it was found ready and healthy.
  returned: success
  type: dict
waited_s:
  description: Seconds waited.
  returned: always
  type: float
"""

import json  # noqa: E402
import time  # noqa: E402
import urllib.error  # noqa: E402
import urllib.request  # noqa: E402

from ansible_collections.community.docker.plugins.module_utils.common_api import (  # noqa: E402
    AnsibleDockerClient,
    RequestException,
)
from ansible_collections.community.docker.plugins.module_utils._api.errors import DockerException  # noqa: E402


def readiness(url):
    """(HTTP status, the JSON body's reason); status 0 while nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=5) as answer:
            return answer.status, ""
    except urllib.error.HTTPError as refused:
        try:
            return refused.code, str(json.loads(refused.read() or b"{}").get("reason", ""))
        except ValueError:
            return refused.code, ""
    except (OSError, ValueError):  # refused or timed out while the process starts
        return 0, ""


def main():
    client = AnsibleDockerClient(
        argument_spec=dict(
            name=dict(type="str", required=True),
            url=dict(type="str", required=True),
            restarts_before=dict(type="int", default=0),
            timeout_s=dict(type="float", default=180.0),
            poll_s=dict(type="float", default=0.5),
        ),
        supports_check_mode=True,
    )
    params = client.module.params
    started = time.monotonic()
    status, reason, health = 0, "", "none"
    try:
        while True:
            waited = round(time.monotonic() - started, 1)
            container = client.get_container(params["name"])
            if not container:
                client.fail("container %s does not exist" % params["name"], waited_s=waited)
            state = container.get("State") or {}
            restarts = int(container.get("RestartCount") or 0) - params["restarts_before"]
            if restarts > 0:  # Docker started it again: its State is the new run's, the log says why
                client.fail("the container restarted %d time(s) within %.0f s of starting" % (restarts, waited),
                            waited_s=waited)
            if state.get("Status") in ("exited", "dead"):
                client.fail("the container %s within %.0f s of starting (exit code %s)"
                            % (state.get("Status"), waited, state.get("ExitCode")), waited_s=waited)
            health = (state.get("Health") or {}).get("Status", "none")
            status, reason = readiness(params["url"])
            if status == 200 and health in ("healthy", "none"):
                client.module.exit_json(changed=False, waited_s=waited, container=container)
            if status == 503 and "failed" in reason:
                client.fail("not ready: %s" % reason, waited_s=waited)
            if waited > params["timeout_s"]:
                client.fail("not ready after %.0f s: /readyz answered %s%s, health check %s"
                            % (waited, status or "nothing", " (%s)" % reason if reason else "", health),
                            waited_s=waited)
            time.sleep(params["poll_s"])
    except (DockerException, RequestException) as exc:
        client.fail("Docker API error while waiting for %s: %s" % (params["name"], exc))


if __name__ == "__main__":
    main()
