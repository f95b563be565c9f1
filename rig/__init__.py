"""rig: the controller for an unattended bench that factory-resets Hikvision IP cameras."""

__version__ = "0.1.0"
