"""Talking to a camera: SADP discovery, ISAPI over HTTP, firmware profiles."""
