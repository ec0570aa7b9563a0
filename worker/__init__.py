"""Celery app, beat schedule and thin tasks; sending messages through Apprise."""
