"""After the search: the confirmation race, the full trainings and the decision, the export, and the proxy check."""
