"""Officers in control of warnings: the release policy, commands applied by the lifecycle
agent (the one writer of an alert's state), approvals, silences and drills."""
