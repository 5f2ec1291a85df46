"""Executors other than the local one (`ingest.preparer.LocalExecutor`); each imports its engine lazily."""
