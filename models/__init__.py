"""The domain: tables, the Period type, and plain functions that take a Session."""
