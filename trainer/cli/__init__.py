"""Command-line tools of the trainer: xanes-train, xanes-eval, xanes-simulate."""
