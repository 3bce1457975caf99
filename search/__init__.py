"""The search: command line, Optuna study, executors, final retrain, export and report."""
