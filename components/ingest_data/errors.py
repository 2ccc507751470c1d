"""The one error ingestion raises."""


class IngestError(ValueError):
    """The source cannot be read; the message names the URI or file and the problem."""
