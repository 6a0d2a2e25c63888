"""A real MCP client for palisade's end-to-end tests: the pinned Python SDK (`mcp`) over stdio.

Usage: python sdk_client.py PALISADE [PALISADE ARGS...] -- SERVER ARGV...

Starts `PALISADE run [ARGS...] -- SERVER...` with `mcp.client.stdio.stdio_client`, opens a `ClientSession`,
initializes, lists the tools, calls `echo` twice (once allowed, once with a schema violation) and prints one
JSON summary line on stdout. The environment (HOME, XDG_*) is passed through so the test's isolated home
applies to palisade. Exits non-zero with a traceback if anything fails.
"""

import json
import os
import sys

import anyio
from mcp.client.session import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client


async def main(argv: list[str]) -> dict:
    palisade, *rest = argv
    params = StdioServerParameters(command=palisade, args=["run", *rest], env=dict(os.environ))
    async with stdio_client(params) as (read, write):
        async with ClientSession(read, write) as session:
            init = await session.initialize()
            tools = await session.list_tools()
            echo = await session.call_tool("echo", {"message": "hello from the python sdk"})
            bad = await session.call_tool("echo", {"message": 42})
            return {
                "protocol_version": init.protocol_version,
                "server_name": init.server_info.name,
                "tools": sorted(t.name for t in tools.tools),
                "echo": {
                    "is_error": bool(echo.is_error),
                    "text": [c.text for c in echo.content if c.type == "text"],
                },
                "bad_echo": {
                    "is_error": bool(bad.is_error),
                    "text": [c.text for c in bad.content if c.type == "text"],
                },
            }


if __name__ == "__main__":
    summary = anyio.run(main, sys.argv[1:])
    print(json.dumps(summary, sort_keys=True))
