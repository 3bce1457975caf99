"""The search: command line, Optuna study, executors, final retrain, export and report.

From Python, one call does what ``python -m search run`` does::

    import search
    result = search.run(data="mydata.yaml", model="yolov8n.pt", trials=100)
    result.verdict, result.improved, result.placement, result.best_pt, result.leaderboard
    search.load("results/<study>")  # the same Result for a finished (or moved) study

Bad input raises `SearchError` with the line the command line prints (`search.api`).
"""

from search.api import Result, SearchError, load, run

__all__ = ["Result", "SearchError", "load", "run"]
