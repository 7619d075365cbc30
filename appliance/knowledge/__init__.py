"""The knowledge base: articles with categories, tags, draft / published / archived states and immutable
versions. Only published versions are ever served to customers or retrieved for answers."""
