"""The versioned, cited knowledge base: data files validated at load time."""
