"""The assistant's MCP server: tools over the task use cases (tools.py), served by the official MCP
SDK over Streamable HTTP, stateless, with bearer-JWT auth (server.py)."""
