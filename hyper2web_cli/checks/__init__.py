"""The groups of checks ``hyper2web check`` runs, one module each: ``manifest`` (the
manifest and its icons), ``service_worker`` and ``certificates``, on top of ``base`` (the
served files, the page, the findings). ``check.py`` puts them together, runs them and
prints the report.
"""
