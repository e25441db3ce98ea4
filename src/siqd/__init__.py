"""siq daemon package: collection, rules, incidents, notifications and the store."""

__version__ = "0.1.0"
