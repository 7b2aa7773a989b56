"""Peers' transports, the durable outbox, link tests and link health."""
