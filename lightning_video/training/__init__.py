"""The Lightning side: the VideoClassifier module and what a training run needs around it (losses, optimisation,
schedules, metrics, global batch, monitoring, progress display, run folders, prediction files)."""
