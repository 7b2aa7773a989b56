"""Database schema, migrations, the one writer (group commit) and the projections.

Works on SQLite (embedded default) and PostgreSQL through the same SQLAlchemy Core code.
"""
