"""Approves a challenger only if it passes thresholds, beats a baseline and the champion."""
