"""collab: a real-time whiteboard and chat server speaking the y-socket.io protocol."""

__version__ = "0.1.0"
