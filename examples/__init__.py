"""Runnable eventkit examples (a package, so `eventkit run examples.helloworld.service:svc`
works from the repository's root)."""
