"""The rollout controller: phases, plan, durable state, and the reconcile loop."""
