"""Search over messages: ``message_search`` and its full-text index, kept in step with
``messages`` by triggers (so a live insert, a wipe and a rebuild all move the index).

SQLite: the FTS5 table ``message_fts`` (external content over ``message_search``, rowid
``doc_id``, tokenizer unicode61 without removing diacritics: й and и stay distinct).
PostgreSQL: a GIN index on ``to_tsvector('simple', doc)``. A message's searchable text is
its ``text`` and every string inside its typed ``data``. A NUL in the text (the JSON
escape ``\\u0000``, which jsonb refuses and SQLite's json_extract stops at) is read as a
space, so no text ever stops a message from being stored.

Revision ID: 0011
Revises: 0010
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


#: SQLite: (message_id, in_reply_to, doc) of the message rows of ``{rows}``; a JSON
#: ``\u0000`` escape becomes ``\u0020`` first (json_extract would cut the text at a NUL;
#: the swap keeps the JSON valid, as only hex digits change)
_SQLITE_ROWS = (
    "SELECT message_id, json_extract(b, '$.in_reply_to'), "
    "trim(coalesce(json_extract(b, '$.text'), '') || ' ' || coalesce((SELECT "
    "group_concat(value, ' ') FROM json_tree(b, '$.data') WHERE type = 'text'), '')) "
    "FROM (SELECT message_id, entry_idx, replace(body, '\\u0000', '\\u0020') AS b FROM {rows})"
)

_SQLITE = [
    "CREATE VIRTUAL TABLE message_fts USING fts5(doc, content='message_search', "
    "content_rowid='doc_id', tokenize='unicode61 remove_diacritics 0')",
    "CREATE TRIGGER message_search_ai AFTER INSERT ON message_search BEGIN "
    "INSERT INTO message_fts(rowid, doc) VALUES (new.doc_id, new.doc); END",
    "CREATE TRIGGER message_search_ad AFTER DELETE ON message_search BEGIN "
    "INSERT INTO message_fts(message_fts, rowid, doc) VALUES ('delete', old.doc_id, old.doc); "
    "END",
    "CREATE TRIGGER message_search_au AFTER UPDATE ON message_search BEGIN "
    "INSERT INTO message_fts(message_fts, rowid, doc) VALUES ('delete', old.doc_id, old.doc); "
    "INSERT INTO message_fts(rowid, doc) VALUES (new.doc_id, new.doc); END",
    "CREATE TRIGGER messages_search_ai AFTER INSERT ON messages BEGIN "
    "INSERT INTO message_search(message_id, in_reply_to, doc) "
    + _SQLITE_ROWS.format(
        rows="(SELECT new.message_id AS message_id, new.entry_idx AS entry_idx, new.body AS body)"
    )
    + "; END",
    "CREATE TRIGGER messages_search_ad AFTER DELETE ON messages BEGIN "
    "DELETE FROM message_search WHERE message_id = old.message_id; END",
    "INSERT INTO message_search(message_id, in_reply_to, doc) "
    + _SQLITE_ROWS.format(rows="messages")
    + " ORDER BY entry_idx",
]

#: PostgreSQL: the doc's ASCII punctuation becomes spaces (``translate`` below), so its
#: text parser splits words where FTS5 does (it would drop ``<tag>``s and keep ``x.y``,
#: ``a@b.c``, ``/p/q`` whole)
_PG = [
    r"""CREATE FUNCTION hotline_search_doc(body text) RETURNS text
    LANGUAGE plpgsql IMMUTABLE AS $$
    DECLARE
      b jsonb := replace(body, '\u0000', '\u0020')::jsonb;
      doc text := coalesce(b ->> 'text', '');
    BEGIN
      IF jsonb_typeof(b -> 'data') = 'object' THEN
        doc := concat_ws(' ', doc, (SELECT string_agg(v #>> '{}', ' ')
          FROM jsonb_path_query(b, 'strict $.data.** ? (@.type() == "string")') AS v));
      END IF;
      RETURN translate(doc, '<>&./\@:-_+=~#%?;,!"()[]{}|^`$*',
                            '                               ');
    END $$""",
    r"""CREATE FUNCTION hotline_search_reply_to(body text) RETURNS text
    LANGUAGE sql IMMUTABLE AS $$
      SELECT replace(body, '\u0000', '\u0020')::jsonb ->> 'in_reply_to'
    $$""",
    """CREATE FUNCTION hotline_message_search() RETURNS trigger
    LANGUAGE plpgsql AS $$
    BEGIN
      IF TG_OP = 'DELETE' THEN
        DELETE FROM message_search WHERE message_id = OLD.message_id;
        RETURN OLD;
      END IF;
      INSERT INTO message_search (message_id, in_reply_to, doc) VALUES (NEW.message_id,
        hotline_search_reply_to(NEW.body), hotline_search_doc(NEW.body));
      RETURN NEW;
    END $$""",
    "CREATE TRIGGER messages_search AFTER INSERT OR DELETE ON messages FOR EACH ROW "
    "EXECUTE FUNCTION hotline_message_search()",
    "CREATE INDEX ix_message_search_fts ON message_search "
    "USING gin (to_tsvector('simple'::regconfig, doc))",
    "INSERT INTO message_search (message_id, in_reply_to, doc) SELECT message_id, "
    "hotline_search_reply_to(body), hotline_search_doc(body) FROM messages ORDER BY entry_idx",
]


def upgrade() -> None:
    op.create_table(
        "message_search",
        sa.Column("doc_id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("message_id", sa.String(length=36), nullable=False),
        sa.Column("in_reply_to", sa.String(length=36), nullable=True),
        sa.Column("doc", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("doc_id"),
        sa.UniqueConstraint("message_id"),
    )
    op.create_index("ix_message_search_reply", "message_search", ["in_reply_to"])
    op.create_index("ix_messages_entry", "messages", ["entry_idx"])
    statements = _SQLITE if op.get_bind().dialect.name == "sqlite" else _PG
    for sql in statements:
        op.execute(sa.text(sql))


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for name in ("messages_search_ai", "messages_search_ad", "message_search_ai",
                     "message_search_ad", "message_search_au"):  # fmt: skip
            op.execute(sa.text(f"DROP TRIGGER IF EXISTS {name}"))
        op.execute(sa.text("DROP TABLE IF EXISTS message_fts"))
    else:
        op.execute(sa.text("DROP TRIGGER IF EXISTS messages_search ON messages"))
        op.execute(sa.text("DROP FUNCTION IF EXISTS hotline_message_search()"))
        op.execute(sa.text("DROP FUNCTION IF EXISTS hotline_search_reply_to(text)"))
        op.execute(sa.text("DROP FUNCTION IF EXISTS hotline_search_doc(text)"))
    op.drop_index("ix_messages_entry", table_name="messages")
    op.drop_table("message_search")
