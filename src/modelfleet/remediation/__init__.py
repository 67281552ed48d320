"""Remediation: runbooks whose actions fix an alert by themselves, with guards and an audit trail."""
