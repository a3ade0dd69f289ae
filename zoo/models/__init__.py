"""Model families. Every module here is imported by the registry and registers its builders."""
