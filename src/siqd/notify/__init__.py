"""Notifications: the outbox (what to send, to whom) and delivery through Apprise."""
