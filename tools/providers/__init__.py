"""Provider clients: one vendor's HTTP contract each, typed results, no MCP.

`CLIENTS` maps a provider name to "module:Class"; the runtime imports and opens a
client only when a tool first needs it (cold start stays fast).
"""

CLIENTS = {
    "aluo": "tools.providers.aluo.client:AluoClient",
    "youcam": "tools.providers.youcam.client:YouCamClient",
    "removedo": "tools.providers.removedo.client:RemovedoClient",
}
