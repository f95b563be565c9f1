"""Subcommands of the rig CLI, one module each (see rig.cli.COMMANDS)."""
