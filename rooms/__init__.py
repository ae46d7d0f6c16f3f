"""Rooms, their documents, membership, policy and stores. asyncio, no web framework."""
