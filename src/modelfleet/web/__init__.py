"""The web layer: HTTP APIs for people and customers beside the gateway (review queue today;
the operator dashboard and customer portal later)."""
