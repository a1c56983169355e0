"""Use cases: each function is one thing a person does, inside one transaction."""
