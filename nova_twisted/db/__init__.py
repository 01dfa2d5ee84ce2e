"""The database: models, migrations, and the thread-pooled runner.

Only the API, scheduler, conductor, consoleauth and cert services import
this package; compute and the drivers reach the database through conductor.
"""
