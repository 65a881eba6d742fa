"""edge_taaf package."""
