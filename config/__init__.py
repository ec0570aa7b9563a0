"""Settings and policy: one typed object, read from the environment (prefix ``REPORTCYCLE_``)."""

from config.settings import Settings, get_settings

__all__ = ["Settings", "get_settings"]
