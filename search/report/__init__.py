"""The study report: ``report.md``, its plots and ``report.html``, written into the study folder.

`write_report` reads the study folder once (`context.read_report`: the Optuna study, the single
source of truth, and the run's ``run.yaml``) and writes its sections in order (`document.SECTIONS`,
each a function of that one `context.Report`): what was searched and how the trials ended, the
leaderboard (`summary`); the confirmation of the best candidates on fresh seeds with the verdict,
and the full retraining of the exported model (`outcome`); whether the proxy predicts full training
(`fidelity`); fitting, object sizes against receptive fields and where the placement sits
(`diagnosis`); parameter importances and the Pareto front (`importance`). Plots are PNGs beside the
report (`plots`); ``report.html`` is the same report in one self-contained file that opens from
disk. A new section is a function ``(Report) -> list[str]`` of Markdown lines, added to `SECTIONS`.
"""

from search.report.context import Report, read_report, sort_trials
from search.report.document import SECTIONS, write_report
from search.report.summary import leaderboard

__all__ = ["SECTIONS", "Report", "leaderboard", "read_report", "sort_trials", "write_report"]
