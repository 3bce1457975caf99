"""Training one candidate: offline-safe Ultralytics (`trainers.offline`), datasets and proxy data
(`trainers.data`), proxy and full training (`trainers.train`), files replaced whole (`trainers.files`).

Kept empty of imports on purpose: `trainers.offline.prepare_ultralytics` must run before
Ultralytics is first imported, and the other modules import it.
"""
