"""The usage ledger: one record per finished request, kept in SQLite in the home.

``records`` (the record, pure), ``pricing`` (cost from the price table, pure),
``budgets`` (budget periods and reservations, pure), ``store`` (the SQLite
file: schema, batched writes, retention), ``writer`` (the thread that takes
records from a bounded queue and writes them off the event loop) and
``query`` (the read API the CLI and the admin endpoints use).
"""
