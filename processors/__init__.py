"""Stream processors: the faust app that folds sensor events into digital doubles."""
