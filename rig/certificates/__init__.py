"""Signed certificates of sanitization, one per unit that passed (NIST SP 800-88 Appendix G,
the R2v3 per-device record), that a buyer can check without trusting rig.

One concern per module:

- ``config``     the bench file's ``[certificate]`` table (issuer organisation, defaults)
- ``canonical``  RFC 8785 canonical JSON: the exact bytes that are signed and digested
- ``evidence``   the evidence digest: what a certificate pins of the unit's recorded evidence
- ``content``    the certificate's fields, built from a recorded run's unit
- ``keys``       the bench's Ed25519 key, owner-only, and the keyring of its public keys
- ``signing``    sign and check the ``{"certificate", "signature"}`` envelope
- ``issue``      which units of a run get one, and issuing them (recorded in the store)
- ``pdf``        the printable page with its QR code and the signed JSON attached
- ``verify``     everything ``rig certificate verify`` checks, with a reason for each failure

Nothing here imports ``cryptography``, ``fpdf2`` or ``segno`` at module level: ``rig --help``
loads this package's command and must stay fast.
"""
