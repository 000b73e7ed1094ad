"""Channel learning: which channel each buyer answers, per interaction type. learner.py holds the
tables and the pure choice; counts.py keeps the counts up to date as touches go out and answers come in."""
