"""The ``hyper2web`` command line: serve, certs, init."""
