"""Publishing: the SQL warehouse and the dataset's own description (metadata.json, README)."""
