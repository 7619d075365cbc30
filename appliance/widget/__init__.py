"""The chat widget's serving side: the built script at a versioned URL with its Subresource Integrity hash, the
embed snippet, CORS for the visitor's calls from intranet pages, and the demo intranet page."""
