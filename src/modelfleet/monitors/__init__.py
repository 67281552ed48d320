"""Monitoring: reference profiles, and drift, data-quality and output-quality monitors per tenant."""
