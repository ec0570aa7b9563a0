"""The ``reportcycle`` command line."""
