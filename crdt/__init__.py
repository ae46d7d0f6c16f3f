"""Sans-I/O core: Yjs engines, wire codecs, document schemas. No asyncio here."""
