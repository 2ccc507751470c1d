"""Serves a registered version (locally, or renders its SeldonDeployment) and moves champion."""
