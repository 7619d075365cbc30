"""Command-line entry point (`appliance`)."""
