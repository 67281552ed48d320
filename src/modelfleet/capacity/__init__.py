"""Capacity and cost: demand forecasts, autoscaling, right-sizing, cost per tenant."""
