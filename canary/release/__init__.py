"""From a version tag to the fleet: check the model artifact, gate the image on golden
prompts against the live version, publish it (tags are immutable), start the rollout.

`rollout release VERSION` runs the chain; each link is a command of its own
(`rollout model check`, `rollout gate`, `rollout publish`, `rollout start`) so a CI
workflow can show them as separate steps.
"""
