"""The ODK Central-compatible JSON API under /v1."""
