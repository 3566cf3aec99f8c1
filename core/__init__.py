"""The bottom layer: settings, errors and the names of things, importable by every other layer."""
