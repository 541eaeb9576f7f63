"""`segsync demo`'s machinery: the run (worker.demo.run), its sample data and names, its defaults.

Kept empty so that `segsync demo --help` can import worker.demo.defaults without loading the
sandbox, the models and SQLAlchemy behind worker.demo.run.
"""
