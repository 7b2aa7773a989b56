"""Deconfliction core: protected sites, planned activities, conflicts and concerns.

Pure and synchronous (no database, network, clock or event loop); the store, the line,
the API and the CLI call into it. Modules: ``models`` (message payloads and schemas),
``geometry`` (geodesic footprints), ``engine`` (index and conflict decision),
``registry`` (the projection of notices), ``concerns`` (state machine, drafts, IAEA
template), ``exchange`` (GeoJSON / ED-318 import and export). See docs/deconfliction.md.

A notification is information, never permission.
"""
