"""Command-line tools that need no GUI: xanes-predict, xanes-compare."""
