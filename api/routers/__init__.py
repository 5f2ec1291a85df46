"""One router per resource: reports, search, documents, jobs, the OpenAI-compatible route, operations."""
