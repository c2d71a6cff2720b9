"""The PostgreSQL sink: ``tables`` (definitions, creation), ``writer`` (the sink),
``reader`` (every read of the sink's tables)."""
