"""aw-code: code retrieval for agent-workstation (index, watch, search, MCP)."""

__version__ = "0.1.0"
