"""The simulated bench: virtual cameras (and, later, switch, GPIO, relay boards) on real sockets."""
