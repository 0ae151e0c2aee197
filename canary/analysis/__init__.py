"""Canary analysis: parse the LB's JSON access log into per-attempt records and judge them.

Both modules are pure: the controller reads the log (through a LogCursor) and splits
attempts by upstream address; these functions only turn data into verdicts.
"""
