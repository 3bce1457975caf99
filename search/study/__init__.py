"""The search itself, one study: its storage and trial records, the start, the trial loop and the executors that run it."""
