"""Database: tables, engine and session factory."""
