"""The root conftest: loads the suite's shared fixtures and hooks (tests/fixtures.py) as one plugin, so that the
tests under tests/ and those beside each component (``components/<name>/tests/``) share them, each session fixture
built once, and the CI rule (no skip outside the cluster tier) holds for both."""

pytest_plugins = ["tests.fixtures"]
