"""The PostgreSQL store against real PostgreSQL servers the tests start themselves."""
