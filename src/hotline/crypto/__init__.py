"""Keys, station cards, fingerprints, HPKE sealing, signatures and TLS material.

``primitives`` is the one module (besides ``tls`` for X.509) that imports
``cryptography``; everything else calls the recipes it offers.
"""
