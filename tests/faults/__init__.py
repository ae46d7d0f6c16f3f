"""Faults with real processes (issue 14): every acknowledged chat message present
exactly once after the dust settles and after a full restart; every replica and a
fresh joiner converge. Bounded in time; real redis-server, sentinel and collab serve
processes on loopback ports."""
