"""An unmodified MCP server (the official Python SDK's FastMCP) that knows
nothing about authentication: the Laissez gate in front of it does that.

Usage: python mcp_notes_server.py PORT
"""

import sys

from mcp.server.fastmcp import FastMCP

port = int(sys.argv[1])
server = FastMCP("notes", host="127.0.0.1", port=port, stateless_http=True)


@server.tool()
def add(a: int, b: int) -> int:
    """Add two numbers."""
    return a + b


@server.tool()
def read_note(name: str) -> str:
    """Read a note."""
    return f"note {name}: remember the milk"


@server.tool()
def write_note(name: str, text: str) -> str:
    """Write a note (the gate asks for notes.write to call this)."""
    return f"saved {name} ({len(text)} characters)"


if __name__ == "__main__":
    server.run(transport="streamable-http")
