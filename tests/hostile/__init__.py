"""Hostile clients against the real server (issue 12): each class of attack
refused, nothing accepted lost, the process and other rooms unaffected."""
