"""One module per broker target. Each defines ``target()``, an async context manager that
yields a :class:`Target` (starting and stopping whatever server it needs)."""
