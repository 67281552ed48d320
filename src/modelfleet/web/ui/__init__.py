"""The operator dashboard and the tenants' portal: pages, their data and their charts."""
