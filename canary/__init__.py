"""The rollout controller and the `rollout` command line."""
