"""Closing the loop: acknowledgements (escalation and feedback come later)."""
