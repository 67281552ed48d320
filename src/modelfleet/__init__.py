"""modelfleet: the operations layer for teams that serve models to many customers."""

__version__ = "0.1.0"

__all__ = ["__version__"]
