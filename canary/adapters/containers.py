"""How each host's service container has lived, read at every analysis: one command per
host over the host connection (`canary.adapters.connection`), a round trip, where the
facts playbook takes seconds."""

from __future__ import annotations

import json
import shlex

from canary.adapters.connection import HostConnection, RemoteCommandError
from canary.decisions.inventory import Fleet
from canary.decisions.restarts import ContainerLife

CONTAINER_NAME_DEFAULT = "tts"  # roles/tts_node/defaults/main.yml: tts_node_container_name
LOG_LINES = 3


SECTION = "--voxfleet-section--"


def life_command(container: str) -> str:
    """A line of JSON from `docker inspect`; when the container restarted, how its process
    ended (Docker's die and oom events since it was created: `docker inspect` shows the
    running process, exit code 0) and the last lines it logged in the two minutes before it
    was started again (`docker logs` tails before it filters by time)."""
    name = shlex.quote(container)
    shown = shlex.quote('{"restarts": {{.RestartCount}}, "started_at": {{json .State.StartedAt}}}')
    since = f"$(docker inspect --format '{{{{.Created}}}}' {name})"
    until = f"$(docker inspect --format '{{{{.State.StartedAt}}}}' {name})"
    ended = shlex.quote('{{.Action}} {{index .Actor.Attributes "exitCode"}}')
    return (f"docker inspect --format {shown} {name} && "
            f"if [ \"$(docker inspect --format '{{{{.RestartCount}}}}' {name})\" != 0 ]; then "
            f"echo {SECTION}; docker events --since \"{since}\" --until \"$(date +%s)\" --filter container={name} "
            f"--filter event=die --filter event=oom --format {ended}; "
            f"echo {SECTION}; started={until}; docker logs --since $(( $(date -d \"$started\" +%s) - 120 )) "
            f"--until \"$started\" {name} 2>&1 | tail -n {LOG_LINES}; fi")


def parse_life(output: str) -> ContainerLife:
    first, *sections = output.split(SECTION)
    seen = json.loads(first.strip())
    events = sections[0].split() if sections else []
    ended = [line.split() for line in (sections[0].splitlines() if sections else []) if line.strip()]
    exits = [int(parts[1]) for parts in ended if parts[0] == "die" and len(parts) > 1 and parts[1].isdigit()]
    logs = [line.strip() for line in (sections[1].splitlines() if len(sections) > 1 else []) if line.strip()]
    return ContainerLife(int(seen["restarts"]), str(seen["started_at"]), exits[-1] if exits else None,
                         "oom" in events, " | ".join(logs)[-600:])


def container_lives(fleet: Fleet, hosts: list[str]) -> dict[str, ContainerLife]:
    """Each host's service container; a host that cannot be asked now (or has no such
    container) is left out: the traffic's evidence and the facts playbook cover it."""
    lives = {}
    for host in hosts:
        container = str(fleet.hostvars.get(host, {}).get("tts_node_container_name", CONTAINER_NAME_DEFAULT))
        try:
            output = HostConnection.from_inventory(fleet, host).run(life_command(container), timeout_s=20)
            lives[host] = parse_life(output.decode(errors="replace"))
        except (RemoteCommandError, ValueError, KeyError):
            continue
    return lives
