"""Envelope encoding and decoding, and the schemas of what travels inside envelopes."""
