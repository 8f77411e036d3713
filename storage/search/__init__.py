"""Full-text search over articles and their Japanese summaries, on SQLite (FTS5) and
PostgreSQL (tsvector + GIN) with the same tokens, so both return the same matches."""
