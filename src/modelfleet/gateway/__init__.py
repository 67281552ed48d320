"""The inference gateway: auth, quotas, routing, micro-batching, protocol routes."""
