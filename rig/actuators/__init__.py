"""The rig's hands: power relays, PoE ports and reset solenoids, each with a simulated twin."""
