"""Notifiers: one per integration (webhook, Slack, PagerDuty, e-mail), retried with backoff."""
