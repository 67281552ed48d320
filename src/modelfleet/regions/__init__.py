"""Regions and data governance: where each tenant is served and its data kept, failover
between regions, the global view from aggregates, export and erasure, and retention."""
